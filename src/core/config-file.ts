import { readFileSync } from "node:fs";
import { parse as parseYaml, YAMLParseError } from "yaml";
import type { z } from "zod";
import { BanyanError, Code } from "./errors.js";

/**
 * Config files are parsed, not checked: `parseConfig(schema, raw, source)` returns a frozen, typed
 * object or throws an InvalidConfig error whose lines each name the path, the bad value and what
 * was expected. Unknown keys are errors (the schemas are strict): a typo never silently does nothing.
 */
export function readYamlFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BanyanError(Code.NotFound, `cannot read config ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parseYaml(text) ?? {};
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? `:${err.linePos[0].line}:${err.linePos[0].col}` : "";
    throw new BanyanError(Code.InvalidConfig, `${path}${where}: not YAML: ${(err as Error).message.split("\n")[0]}`, { cause: err });
  }
}

/**
 * Where a config came from: a file, and the dotted paths the command line set over it (--set and
 * the named flags), so an error names the one that is wrong: `--set log.level`, not the file.
 */
export type ConfigSource = string | { readonly file: string | null; readonly flags: readonly string[] };

/** The file or the flag a value at `path` came from. */
export function sourceOf(source: ConfigSource, path: string): string {
  if (typeof source === "string") return source;
  const flag = source.flags.find((f) => path === f || path.startsWith(f + ".") || f.startsWith(path + "."));
  return flag !== undefined ? `--set ${flag}` : (source.file ?? "flags");
}

export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, source: ConfigSource): Readonly<z.infer<S>> {
  const result = schema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const lines = result.error.issues.slice(0, 20).map((issue) => {
      const path = issue.path.map(String).join(".") || "(top)";
      if (issue.code === "unrecognized_keys") {
        const prefix = path === "(top)" ? "" : path + ".";
        return `${sourceOf(source, prefix + issue.keys[0]!)}: ${path === "(top)" ? "" : path + ": "}unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")}`;
      }
      const got = "input" in issue && issue.input !== undefined ? `got ${JSON.stringify(issue.input)}, ` : "";
      // One shape for every line: "path: got X, expected Y" (zod words its messages several ways).
      const expected = issue.message.replace(/^(Invalid input|Invalid option|Too small|Too big): /, "").replace(/, received \w+$/, "");
      return `${sourceOf(source, path)}: ${path}: ${got}${expected}`;
    });
    throw new BanyanError(Code.InvalidConfig, lines.join("\n"));
  }
  return deepFreeze(result.data);
}

/**
 * Applies `--set a.b=value` overrides (value parsed as YAML, so numbers and lists work) onto a raw
 * config before it is parsed: every field can be overridden from the command line.
 */
export function applyOverrides(raw: unknown, sets: readonly string[]): Record<string, unknown> {
  const base: Record<string, unknown> = typeof raw === "object" && raw !== null && !Array.isArray(raw) ? structuredClone(raw as Record<string, unknown>) : {};
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new BanyanError(Code.InvalidArgument, `--set: got ${JSON.stringify(s)}, expected key.path=value`);
    const path = s.slice(0, eq).split(".");
    let value: unknown;
    try {
      value = parseYaml(s.slice(eq + 1));
    } catch {
      value = s.slice(eq + 1);
    }
    let node = base;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (typeof next !== "object" || next === null || Array.isArray(next)) node[key] = {};
      node = node[key] as Record<string, unknown>;
    }
    node[path[path.length - 1]!] = value;
  }
  return base;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}

/**
 * `defaults` with each of its keys the partial sets to a number taken from it, frozen: how a
 * daemon's optional numeric settings (limits, tree port, HTTP bounds) meet their defaults. Keys
 * the defaults do not have are ignored, so a wider config object can be passed as it is.
 */
export function overDefaults<T extends object>(defaults: T, partial: object): Readonly<T> {
  const out = { ...defaults } as Record<string, unknown>;
  for (const k of Object.keys(defaults)) {
    const v = (partial as Record<string, unknown>)[k];
    if (typeof v === "number") out[k] = v;
  }
  return Object.freeze(out) as unknown as T;
}
