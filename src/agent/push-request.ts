import { basicCredentials } from "../core/web-config.js";

/** What the push API reads of a request: the grouping key in its path and its token (its body: readBody, core/http-bounds.ts). */

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * The grouping key of a Pushgateway path, `/metrics/job/<job>[/<label>/<value>…]`, where any
 * component may be written `<name>@base64/<base64url value>` (`=` alone for an empty value), as
 * client libraries do for values with a slash. Errors are the Pushgateway's: 404 for another path,
 * 400 for an odd component count, an empty job or a bad label name.
 */
export function parseGroupingPath(pathname: string): { grouping: Record<string, string> } | { status: number; body: string } {
  const parts = pathname.split("/").slice(1);
  if (parts[0] !== "metrics" || parts[1] === undefined || !/^job(@base64)?$/.test(parts[1])) {
    return { status: 404, body: "expected /metrics/job/<job>[/<label>/<value>…]\n" };
  }
  const rest = parts.slice(1);
  if (rest.length % 2 !== 0) return { status: 400, body: `odd number of components in label string "${pathname.slice("/metrics".length)}"\n` };
  const grouping: Record<string, string> = {};
  for (let k = 0; k < rest.length; k += 2) {
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rest[k]!);
      value = decodeURIComponent(rest[k + 1]!);
    } catch {
      return { status: 400, body: `bad percent-escape in the path: ${JSON.stringify(`${rest[k]}/${rest[k + 1]}`.slice(0, 64))}\n` };
    }
    if (name.endsWith("@base64")) {
      name = name.slice(0, -"@base64".length);
      value = value === "=" ? "" : Buffer.from(value, "base64").toString("utf8");
    }
    if (!LABEL_NAME.test(name) || name.startsWith("__")) return { status: 400, body: `invalid label name "${name}" in the path\n` };
    grouping[name] = value;
  }
  if (grouping["job"] === "") return { status: 400, body: "the job name is empty\n" };
  return { grouping };
}

/** A push's token: Bearer, or the password of Basic auth (what Prometheus clients' push helpers send). */
export function tokenOf(header: string | undefined): string | null {
  const bearer = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (bearer) return bearer[1]!;
  return basicCredentials(header)?.password ?? null;
}
