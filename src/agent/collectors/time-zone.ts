import { readFileSync } from "node:fs";

/**
 * The local zone's abbreviation ("UTC", "CET", "CEST", "EST"), as node_exporter's time collector
 * labels `node_time_zone_offset_seconds` (Go's time.Now().Zone(), from the zone's TZif file), read
 * from that file (RFC 8536) rather than through Intl: ICU's zone and locale data cost the agent
 * 8 MB of resident memory for one label, and name Berlin "GMT+1" where node_exporter says "CET".
 */

/** One local time type of a TZif file: UTC offset (s) and abbreviation. */
export interface ZoneType {
  readonly offsetS: number;
  readonly abbreviation: string;
}

/** What a TZif file says: its types, the type of each transition (oldest first), and its footer's TZ string. */
export interface ZoneFile {
  readonly types: readonly ZoneType[];
  readonly transitionsS: readonly number[];
  readonly transitionTypes: readonly number[];
  readonly footer: string;
}

const HEADER = 44;

/** Parses a TZif file (versions 1 to 4; the 64-bit block where there is one); null when it is not one. */
export function parseTzif(b: Buffer): ZoneFile | null {
  if (b.length < HEADER || b.toString("latin1", 0, 4) !== "TZif") return null;
  const counts = (at: number): number[] => [0, 1, 2, 3, 4, 5].map((k) => b.readUInt32BE(at + 20 + 4 * k));
  const v1Size = (c: number[], timeSize: number): number => c[3]! * timeSize + c[3]! + c[4]! * 6 + c[5]! + c[2]! * (timeSize + 4) + c[1]! + c[0]!;
  let at = 0;
  let timeSize = 4;
  let c = counts(0);
  if (b[4] !== 0) {
    // Version 2+: skip the 32-bit block; a second header and a 64-bit block follow.
    at = HEADER + v1Size(c, 4);
    if (b.length < at + HEADER || b.toString("latin1", at, at + 4) !== "TZif") return null;
    c = counts(at);
    timeSize = 8;
  }
  const [, , , timecnt, typecnt, charcnt] = c as [number, number, number, number, number, number];
  let p = at + HEADER;
  if (typecnt === 0 || b.length < p + v1Size(c, timeSize)) return null;
  const transitionsS: number[] = [];
  for (let k = 0; k < timecnt; k++, p += timeSize) transitionsS.push(timeSize === 8 ? Number(b.readBigInt64BE(p)) : b.readInt32BE(p));
  const transitionTypes: number[] = [];
  for (let k = 0; k < timecnt; k++) transitionTypes.push(b[p++]!);
  const raw: { offsetS: number; at: number }[] = [];
  for (let k = 0; k < typecnt; k++, p += 6) raw.push({ offsetS: b.readInt32BE(p), at: b[p + 5]! });
  const chars = b.toString("latin1", p, (p += charcnt));
  const nul = (from: number): number => (chars.indexOf("\0", from) < 0 ? chars.length : chars.indexOf("\0", from));
  const types = raw.map((t) => ({ offsetS: t.offsetS, abbreviation: chars.slice(t.at, nul(t.at)) }));
  if (transitionTypes.some((t) => t >= typecnt)) return null;
  // Past the leap seconds and the standard/UT indicators: the footer.
  p += v1Size(c, timeSize) - (timecnt * timeSize + timecnt + typecnt * 6 + charcnt);
  const footer = timeSize === 8 ? (/^\n([^\n]*)\n/.exec(b.toString("latin1", p, Math.min(b.length, p + 256)))?.[1] ?? "") : "";
  return { types, transitionsS, transitionTypes, footer };
}

/** The two names of a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3" → CET, CEST; "<+0530>-5:30" → +0530) with their offsets east of UTC. */
export function footerTypes(tz: string): ZoneType[] {
  const m = /^(<[^>]*>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})(?:(<[^>]*>|[A-Za-z]{3,})([+-]?\d{1,2}(?::\d{2}){0,2})?)?/.exec(tz);
  if (m === null) return [];
  const seconds = (s: string): number => {
    const sign = s.startsWith("-") ? -1 : 1;
    const [h = 0, mi = 0, se = 0] = s.replace(/^[+-]/, "").split(":").map(Number);
    return sign * (h * 3600 + mi * 60 + se);
  };
  const name = (s: string): string => s.replace(/^<|>$/g, "");
  // POSIX offsets are west of UTC; a DST name without one is an hour ahead of standard time.
  const std = { abbreviation: name(m[1]!), offsetS: -seconds(m[2]!) };
  if (m[3] === undefined) return [std];
  return [std, { abbreviation: name(m[3]), offsetS: m[4] === undefined ? std.offsetS + 3600 : -seconds(m[4]) }];
}

/**
 * The abbreviation in force at `nowS` for a zone now `offsetS` east of UTC: past the last
 * transition, the footer's name for that offset (a slim file stops where its rule takes over);
 * else the type of the last transition (type 0 before the first); else the newest type with that
 * offset; else the offset itself ("+0530"), as Go names a zone without one.
 */
export function zoneAbbreviation(zone: ZoneFile | null, nowS: number, offsetS: number): string {
  if (zone !== null) {
    let last = -1;
    while (last + 1 < zone.transitionsS.length && zone.transitionsS[last + 1]! <= nowS) last++;
    const fromFooter = last === zone.transitionsS.length - 1 ? footerTypes(zone.footer).find((t) => t.offsetS === offsetS) : undefined;
    if (fromFooter !== undefined) return fromFooter.abbreviation;
    const current = zone.types[last >= 0 ? zone.transitionTypes[last]! : 0];
    if (current?.offsetS === offsetS) return current.abbreviation;
    for (let k = zone.transitionTypes.length - 1; k >= 0; k--) {
      const t = zone.types[zone.transitionTypes[k]!]!;
      if (t.offsetS === offsetS) return t.abbreviation;
    }
    const any = zone.types.find((t) => t.offsetS === offsetS);
    if (any !== undefined) return any.abbreviation;
  }
  const a = Math.abs(offsetS);
  return `${offsetS < 0 ? "-" : "+"}${String(Math.floor(a / 3600)).padStart(2, "0")}${String(Math.floor((a % 3600) / 60)).padStart(2, "0")}`;
}

/** The file of the process's zone, as Go and glibc find it: $TZ (a name under /usr/share/zoneinfo, or ":path"), else /etc/localtime. */
export function zoneFilePath(tz: string | undefined): string | null {
  if (tz === undefined) return "/etc/localtime";
  const name = tz.startsWith(":") ? tz.slice(1) : tz;
  if (name === "" || name === "UTC" || name === "UTC0") return null;
  if (name.startsWith("/")) return name;
  // A relative name never climbs out of the zoneinfo directory.
  if (name.split("/").includes("..")) return null;
  return `/usr/share/zoneinfo/${name}`;
}

/** Reads the process's zone file once, and names the zone for each offset it is asked about. */
export class LocalZone {
  private zone: ZoneFile | null | undefined;
  private lastOffsetS = NaN;
  private lastName = "UTC";

  constructor(private readonly tz: string | undefined = process.env.TZ) {}

  /** The abbreviation now: computed again only when the offset changes (a DST switch, a new TZ). */
  name(nowS: number, offsetS: number): string {
    if (offsetS === this.lastOffsetS) return this.lastName;
    if (this.zone === undefined) {
      const path = zoneFilePath(this.tz);
      try {
        this.zone = path === null ? null : parseTzif(readFileSync(path));
      } catch {
        // No such zone file: TZ may be a POSIX rule itself ("CET-1CEST,M3.5.0,M10.5.0/3").
        this.zone = this.tz === undefined ? null : { types: [], transitionsS: [], transitionTypes: [], footer: this.tz.replace(/^:/, "") };
      }
    }
    this.lastOffsetS = offsetS;
    this.lastName = this.zone === null && offsetS === 0 ? "UTC" : zoneAbbreviation(this.zone, nowS, offsetS);
    return this.lastName;
  }
}
