import { randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import writeFileAtomic from "write-file-atomic";
import { BanyanError, Code } from "../core/errors.js";

/** A group's gid from its name (/etc/group) or as given; a config error names the key when there is none. */
function gidOf(group: string | number, etcGroup = "/etc/group"): number {
  if (typeof group === "number") return group;
  if (/^\d+$/.test(group)) return Number(group);
  let text = "";
  try {
    text = readFileSync(etcGroup, "utf8");
  } catch {
    // no file: no such group
  }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid);
  }
  throw new BanyanError(Code.InvalidConfig, `jobs.push.nodeTokenGroup: ${JSON.stringify(group)}: expected a group of this host (${etcGroup}) or a gid`);
}

/**
 * The node's own push token, for groups of no job when every push needs a token: made afresh at each
 * start, written atomically (temp file, fsync, chown, rename) readable by root and `group` only. An
 * empty or missing token never authenticates.
 */
export class NodePushToken {
  private readonly token: Buffer;

  constructor(readonly file: string, group: string | number | undefined) {
    const gid = group === undefined ? 0 : gidOf(group);
    this.token = Buffer.from(randomBytes(24).toString("hex"));
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileAtomic.sync(file, `${this.token.toString()}\n`, { mode: group === undefined ? 0o400 : 0o440, chown: { uid: process.getuid?.() ?? 0, gid } });
  }

  matches(token: string): boolean {
    const given = Buffer.from(token);
    return given.length === this.token.length && timingSafeEqual(given, this.token);
  }
}
