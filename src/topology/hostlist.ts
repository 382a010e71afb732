import { readFileSync } from "node:fs";
import { BanyanError, Code } from "../core/errors.js";

/**
 * Slurm hostlist expressions: `node[001-128]`, `gpu[01-08,12,20-23]`, `r[1-2]n[01-32]`, and
 * several of them separated by commas. Zero padding follows the lower bound of each range, as in
 * Slurm (`[08-10]` gives 08 09 10, `[8-10]` gives 8 9 10).
 */

/** A hostlist that would expand past this many names is refused: it is a typo, not a cluster. */
export const MAX_HOSTLIST_NAMES = 2_000_000;

const NAME_CHAR = /[A-Za-z0-9._-]/;

/** Expands one hostlist expression into host names, in order. Throws a BanyanError pointing at the column. */
export function expandHostlist(text: string, source = "hostlist"): string[] {
  const out: string[] = [];
  const fail = (column: number, why: string): never => {
    throw new BanyanError(
      Code.InvalidArgument,
      `${source}: ${why} at column ${column + 1}\n  ${text}\n  ${" ".repeat(column)}^`,
    );
  };

  let i = 0;
  if (text.trim() === "") fail(0, "empty hostlist");
  while (i < text.length) {
    // One item: text and bracket groups up to a comma outside brackets.
    const parts: string[][] = [];
    const itemStart = i;
    while (i < text.length && text[i] !== ",") {
      const ch = text[i]!;
      if (ch === "[") {
        const open = i;
        const close = text.indexOf("]", i);
        if (close < 0) fail(open, "unclosed '['");
        const nested = text.indexOf("[", i + 1);
        if (nested >= 0 && nested < close) fail(nested, "nested '['");
        parts.push(expandRanges(text, open + 1, close, fail));
        i = close + 1;
      } else if (ch === "]") {
        fail(i, "unexpected ']'");
      } else if (NAME_CHAR.test(ch)) {
        const start = i;
        while (i < text.length && NAME_CHAR.test(text[i]!)) i++;
        parts.push([text.slice(start, i)]);
      } else {
        fail(i, `unexpected character ${JSON.stringify(ch)}`);
      }
    }
    if (i === itemStart) fail(i, "empty host name");
    let count = 1;
    for (const p of parts) count *= p.length;
    if (out.length + count > MAX_HOSTLIST_NAMES) {
      fail(itemStart, `expands to more than ${MAX_HOSTLIST_NAMES} names`);
    }
    appendProduct(parts, out);
    if (i < text.length) {
      i++; // the comma
      if (i === text.length) fail(i - 1, "trailing ','");
    }
  }
  return out;
}

type Fail = (column: number, why: string) => never;

/** Expands the inside of one bracket group, `01-08,12`, into zero-padded strings. */
function expandRanges(text: string, from: number, to: number, fail: Fail): string[] {
  if (from === to) fail(from, "empty '[]'");
  const out: string[] = [];
  let i = from;
  while (i < to) {
    const loStart = i;
    while (i < to && isDigit(text, i)) i++;
    if (i === loStart) fail(i, "expected a number");
    const lo = text.slice(loStart, i);
    let hi = lo;
    if (i < to && text[i] === "-") {
      i++;
      const hiStart = i;
      while (i < to && isDigit(text, i)) i++;
      if (i === hiStart) fail(i, "expected a number after '-'");
      hi = text.slice(hiStart, i);
    }
    if (i < to) {
      if (text[i] !== ",") fail(i, `unexpected character ${JSON.stringify(text[i])} in range`);
      i++;
      if (i === to) fail(i, "trailing ',' in range");
    }
    if (lo.length > 9 || hi.length > 9) fail(loStart, "number longer than 9 digits");
    const loN = Number(lo);
    const hiN = Number(hi);
    if (hiN < loN) fail(loStart, `range ${lo}-${hi} goes backwards`);
    if (hiN - loN + 1 > MAX_HOSTLIST_NAMES) fail(loStart, `range ${lo}-${hi} is too large`);
    const width = lo.length;
    for (let n = loN; n <= hiN; n++) out.push(String(n).padStart(width, "0"));
  }
  return out;
}

function isDigit(text: string, i: number): boolean {
  const c = text.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/** Appends the cartesian product of the parts, leftmost varying slowest, as Slurm does. */
function appendProduct(parts: string[][], out: string[]): void {
  const walk = (k: number, prefix: string): void => {
    if (k === parts.length) {
      out.push(prefix);
      return;
    }
    for (const p of parts[k]!) walk(k + 1, prefix + p);
  };
  walk(0, "");
}

/**
 * Reads a node list given on the command line: a hostlist, or `@file` with one name or hostlist
 * per line (`scontrol show hostnames > f` works; blank lines and `#` comments are skipped).
 */
export function readHostlistArgument(arg: string): string[] {
  if (!arg.startsWith("@")) return expandHostlist(arg);
  const path = arg.slice(1);
  let content: string;
  try {
    content = readFileSync(path, "utf8");
  } catch (err) {
    throw new BanyanError(Code.NotFound, `cannot read node list ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const out: string[] = [];
  const lines = content.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/#.*/, "").trim();
    if (line === "") continue;
    for (const name of expandHostlist(line, `${path}:${n + 1}`)) out.push(name);
  }
  if (out.length === 0) throw new BanyanError(Code.InvalidArgument, `${path}: no host names in the file`);
  return out;
}

/** Throws when a name appears twice, naming it: a topology holds each node once. */
export function assertUnique(names: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new BanyanError(Code.InvalidArgument, `${what}: ${name} is listed twice`);
    seen.add(name);
  }
}

/**
 * The first name of a hostlist without expanding it (`n[0007-9000],m1` gives `n0007`): what a
 * root asks of a nodelist a node sent, where a full expansion could be two million names. Undefined
 * when the text is not a hostlist's shape.
 */
export function firstHost(text: string): string | undefined {
  let depth = 0;
  let end = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === "[") depth++;
    else if (c === "]") depth--;
    else if (c === "," && depth === 0) {
      end = i;
      break;
    }
  }
  const item = text.slice(0, end).trim();
  const name = item.replace(/\[([^\]]*)\]/g, (_, inner: string) => /^\s*([0-9]+)/.exec(inner)?.[1] ?? "\0");
  return name !== "" && [...name].every((ch) => NAME_CHAR.test(ch)) ? name : undefined;
}
