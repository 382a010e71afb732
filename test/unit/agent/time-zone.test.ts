import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import t from "tap";
import { LocalZone, footerTypes, parseTzif, zoneAbbreviation, zoneFilePath } from "../../../src/agent/collectors/time-zone.js";

/** glibc's answer (`date`): the zone's abbreviation and offset east of UTC in seconds at `s`. */
function glibc(tz: string, s: number): { name: string; offsetS: number } {
  const [name, z] = execFileSync("date", ["-d", `@${s}`, "+%Z %z"], { env: { TZ: tz }, encoding: "utf8" }).trim().split(" ") as [string, string];
  const sign = z.startsWith("-") ? -1 : 1;
  return { name, offsetS: sign * (Number(z.slice(1, 3)) * 3600 + Number(z.slice(3, 5)) * 60) };
}

const ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns", "Pacific/Chatham", "America/Sao_Paulo", "Africa/Casablanca", "Asia/Tokyo"];

t.test("time zone - the abbreviation glibc's date gives, for real zone files at random instants 1990-2060", async (t) => {
  for (const name of ZONES) {
    const path = `/usr/share/zoneinfo/${name}`;
    if (!existsSync(path)) {
      t.fail(`${path} is missing: install tzdata (scripts/install-system-deps.sh)`);
      continue;
    }
    const zone = parseTzif(readFileSync(path));
    t.ok(zone !== null, `${name} parses`);
    fc.assert(
      fc.property(fc.integer({ min: 631152000, max: 2840140800 }), (s) => {
        const want = glibc(path, s);
        const got = zoneAbbreviation(zone, s, want.offsetS);
        if (got !== want.name) throw new Error(`${name} at ${s}: ${got}, glibc ${want.name}`);
      }),
      { numRuns: 25 },
    );
  }
});

t.test("time zone - a slim file (transitions end early, the footer's rule goes on) is named by its footer", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-tz-"));
  writeFileSync(
    join(dir, "src"),
    ["Rule T 1981 max - Mar lastSun 1:00u 1:00 S", "Rule T 1996 max - Oct lastSun 1:00u 0 -", "Zone Test/Slim 1:00 T XE%sT"].join("\n") + "\n",
  );
  execFileSync("zic", ["-b", "slim", "-d", dir, join(dir, "src")]);
  const path = join(dir, "Test/Slim");
  const zone = parseTzif(readFileSync(path))!;
  t.equal(zone.footer, "XET-1XEST,M3.5.0,M10.5.0/3", "the footer");
  t.ok(zone.transitionsS.every((x) => x < 2_000_000_000), "no transition written for the years the rule covers");
  for (const s of [1_800_000_000, 1_815_000_000, 2_500_000_000, 2_520_000_000]) {
    const want = glibc(path, s);
    t.equal(zoneAbbreviation(zone, s, want.offsetS), want.name, `at ${s}: ${want.name}`);
  }
});

t.test("time zone - POSIX rules, paths, and no throw on a damaged file", async (t) => {
  t.same(footerTypes("CET-1CEST,M3.5.0,M10.5.0/3"), [
    { abbreviation: "CET", offsetS: 3600 },
    { abbreviation: "CEST", offsetS: 7200 },
  ]);
  t.same(footerTypes("<+0530>-5:30"), [{ abbreviation: "+0530", offsetS: 19800 }]);
  t.same(footerTypes("EST5EDT4,M3.2.0,M11.1.0"), [
    { abbreviation: "EST", offsetS: -18000 },
    { abbreviation: "EDT", offsetS: -14400 },
  ]);
  t.same(footerTypes(""), []);
  t.equal(zoneAbbreviation(null, 0, 19800), "+0530", "no file: the offset, as Go names it");
  t.equal(zoneAbbreviation(null, 0, -12600), "-0330");
  t.equal(zoneFilePath(undefined), "/etc/localtime");
  t.equal(zoneFilePath(":Europe/Berlin"), "/usr/share/zoneinfo/Europe/Berlin");
  t.equal(zoneFilePath("/tmp/zone"), "/tmp/zone");
  t.equal(zoneFilePath("UTC"), null);
  t.equal(zoneFilePath("../../etc/passwd"), null, "a name never climbs out of zoneinfo");
  t.equal(new LocalZone("UTC").name(0, 0), "UTC");
  t.equal(new LocalZone("CET-1CEST,M3.5.0,M10.5.0/3").name(0, 7200), "CEST", "TZ as a POSIX rule");
  t.equal(new LocalZone("Europe/Berlin").name(1_800_000_000, 3600), "CET");
  const berlin = readFileSync("/usr/share/zoneinfo/Europe/Berlin");
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(berlin.length - 1), fc.nat(255)), { maxLength: 8 }), fc.nat(berlin.length), (edits, cut) => {
      const b = Buffer.from(berlin.subarray(0, cut));
      for (const [at, v] of edits) if (at < b.length) b[at] = v;
      const zone = parseTzif(b);
      if (zone !== null) zoneAbbreviation(zone, 1_800_000_000, 3600);
    }),
    { numRuns: 500 },
  );
});
