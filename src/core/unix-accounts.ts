import { readFileSync, statSync } from "node:fs";
import { userInfo } from "node:os";

/** A user (and group) as `chown` takes them: numeric ids, looked up in /etc/passwd and /etc/group. */
export interface UnixOwner {
  readonly user: string;
  readonly uid: number;
  readonly gid: number;
}

function lookUp(file: string, name: string): string[] | null {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return null;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === name) return fields;
  }
  return null;
}

/** `USER[:GROUP]` (a name or a number each) → ids; the group defaults to the user's own; null when unknown here. */
export function parseOwner(spec: string): UnixOwner | { error: string } {
  const [user = "", group] = spec.split(":");
  const pw = /^\d+$/.test(user) ? null : lookUp("/etc/passwd", user);
  const uid = /^\d+$/.test(user) ? Number(user) : pw !== null ? Number(pw[2]) : NaN;
  if (!Number.isInteger(uid)) return { error: `no user ${JSON.stringify(user)} on this host (/etc/passwd)` };
  let gid = pw !== null ? Number(pw[3]) : uid;
  if (group !== undefined && group !== "") {
    const gr = /^\d+$/.test(group) ? null : lookUp("/etc/group", group);
    gid = /^\d+$/.test(group) ? Number(group) : gr !== null ? Number(gr[2]) : NaN;
    if (!Number.isInteger(gid)) return { error: `no group ${JSON.stringify(group)} on this host (/etc/group)` };
  }
  return { user, uid, gid };
}

/**
 * Why this process may not read `path`, in words an admin acts on (who runs it, who owns the file,
 * its mode), for an EACCES: "not readable by user banyan (uid 998): owned by uid 0, mode 600".
 */
export function unreadableBecause(path: string): string {
  let me: string;
  try {
    const u = userInfo();
    me = `user ${u.username} (uid ${u.uid})`;
  } catch {
    me = `uid ${process.getuid?.() ?? "?"}`;
  }
  try {
    const st = statSync(path);
    return `not readable by ${me}: owned by uid ${st.uid} gid ${st.gid}, mode ${(st.mode & 0o777).toString(8)}`;
  } catch {
    return `not readable by ${me} (nor its directory)`;
  }
}
