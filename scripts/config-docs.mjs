#!/usr/bin/env node
// Writes docs/configuration.md from the daemons' config schemas: every key, its type, default and
// bounds from the zod schema (z.toJSONSchema of the built dist/), its meaning from the doc comment
// on the key in the source (read through TypeScript's checker: the comment on a schema's key is the
// comment on its inferred config type's property). `--check`: exit 1 when the file is not what the
// schemas give (`npm test` runs it, as it checks the generated protobuf code).
// Usage: node scripts/config-docs.mjs [--check]   (after `npm run build`)
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import ts from "typescript";
import { z } from "zod";

const repo = fileURLToPath(new URL("..", import.meta.url));
const OUT = `${repo}docs/configuration.md`;

const DAEMONS = [
  { name: "root", file: "src/root/root-config.ts", schema: "rootConfigSchema", type: "RootConfig", yaml: "/etc/banyan/root.yaml" },
  { name: "agent", file: "src/agent/agent-config.ts", schema: "agentConfigSchema", type: "AgentConfig", yaml: "/etc/banyan/agent.yaml" },
  { name: "relay", file: "src/relay/relay-config.ts", schema: "relayConfigSchema", type: "RelayConfig", yaml: "/etc/banyan/relay.yaml" },
];

/** path ("remoteWrite.queue.maxBytes", arrays without an index) → the doc comment on that key. */
function docsOf(checker, type, prefix = "", out = new Map(), depth = 0) {
  if (depth > 8) return out;
  for (const p of checker.getPropertiesOfType(type)) {
    const path = prefix + p.name;
    const doc = ts.displayPartsToString(p.getDocumentationComment(checker)).replace(/\s+/g, " ").trim();
    if (doc !== "" && !out.has(path)) out.set(path, doc);
    let t = checker.getNonNullableType(checker.getTypeOfSymbol(p));
    if (checker.isArrayType(t)) t = checker.getNonNullableType(checker.getTypeArguments(t)[0]);
    const parts = t.isUnion() ? t.types : [t];
    for (const part of parts) {
      if (!(part.getFlags() & ts.TypeFlags.Object) || part.getCallSignatures().length > 0) continue;
      docsOf(checker, part, `${path}.`, out, depth + 1);
    }
  }
  return out;
}

function sourceDocs() {
  const program = ts.createProgram(
    DAEMONS.map((d) => `${repo}${d.file}`),
    { strict: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, noEmit: true },
  );
  const checker = program.getTypeChecker();
  const docs = new Map();
  for (const d of DAEMONS) {
    const sf = program.getSourceFile(`${repo}${d.file}`);
    let found = null;
    ts.forEachChild(sf, (n) => {
      if (ts.isTypeAliasDeclaration(n) && n.name.text === d.type) found = checker.getTypeAtLocation(n.name);
    });
    if (found === null) throw new Error(`${d.file}: no type ${d.type}`);
    docs.set(d.name, docsOf(checker, found));
  }
  return docs;
}

/** A JSON schema's type in words: `integer`, `"1.0" | "2.0"`, `list of string`, `map of string`. */
function typeOf(s) {
  if (s.anyOf || s.oneOf) return [...new Set((s.anyOf ?? s.oneOf).map(typeOf))].join(" | ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (s.type === "array") return `list of ${s.items ? typeOf(s.items) : "any"}`;
  if (s.type === "object" && s.properties) return "object";
  if (s.type === "object") return s.additionalProperties && typeof s.additionalProperties === "object" ? `map of ${typeOf(s.additionalProperties)}` : "object";
  return s.type ?? "any";
}

/** Its bounds in words: `≥ 1`, `0 to 9`, `at most 64 items`. */
function boundsOf(s) {
  const b = [];
  // A whole number above 0 is one of at least 1.
  const whole = s.type === "integer";
  const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? (whole ? s.exclusiveMinimum + 1 : `> ${s.exclusiveMinimum}`) : undefined);
  const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? (whole ? s.exclusiveMaximum - 1 : `< ${s.exclusiveMaximum}`) : undefined);
  const big = (v) => (typeof v === "number" && Math.abs(v) >= Number.MAX_SAFE_INTEGER ? null : v);
  const l = big(lo);
  const h = big(hi);
  if (l !== null && l !== undefined && h !== null && h !== undefined && typeof l === "number" && typeof h === "number") b.push(`${l} to ${h}`);
  else {
    if (l !== null && l !== undefined) b.push(typeof l === "number" ? `≥ ${l}` : l);
    if (h !== null && h !== undefined) b.push(typeof h === "number" ? `≤ ${h}` : h);
  }
  if (s.minLength !== undefined && s.minLength > 0) b.push(s.minLength === 1 ? "not empty" : `at least ${s.minLength} characters`);
  if (s.maxLength !== undefined) b.push(`at most ${s.maxLength} characters`);
  if (s.minItems !== undefined && s.minItems > 0) b.push(`at least ${s.minItems} items`);
  if (s.maxItems !== undefined) b.push(`at most ${s.maxItems} items`);
  if (s.pattern !== undefined) b.push(`matching \`${s.pattern}\``);
  return b;
}

/** One line per key, depth first in the schema's order. */
function* keys(s, path, docs) {
  const props = s.properties ?? {};
  for (const [k, raw] of Object.entries(props)) {
    const p = raw.anyOf && raw.anyOf.length === 1 ? raw.anyOf[0] : raw;
    const key = path === "" ? k : `${path}.${k}`;
    const docPath = key.replace(/\[\]/g, "");
    const words = [typeOf(p), ...boundsOf(p)];
    const def = p.default ?? raw.default;
    if (def !== undefined && !(typeof def === "object" && def !== null && Object.keys(def).length > 0 && !Array.isArray(def))) words.push(`default ${JSON.stringify(def)}`);
    const required = (s.required ?? []).includes(k) && def === undefined;
    if (required) words.push("required");
    const doc = docs.get(docPath) ?? "";
    yield `- \`${key}\` (${words.join("; ")})${doc !== "" ? `: ${doc}` : ""}`;
    if (p.type === "object" && p.properties) yield* keys(p, key, docs);
    if (p.type === "array" && p.items?.type === "object" && p.items.properties) yield* keys(p.items, `${key}[]`, docs);
  }
}

async function render() {
  const docs = sourceDocs();
  const parts = [
    "# Configuration",
    "",
    "<!-- Generated by `npm run docs:config` (scripts/config-docs.mjs) from the config schemas and their doc",
    "     comments; `npm test` fails when it is stale. Edit the schemas, not this file. -->",
    "",
    "Every key each daemon takes, in its YAML file or as `--set key=value` (`--set a.b=1` for a nested",
    "key; a list in YAML flow style, `--set 'aggregates=[{record: x, expr: sum, metric: y}]'`). A key the",
    "schema does not have, a value of the wrong type or out of its bounds is a config error that names",
    "the file, the key and what was expected (exit 2). Times are milliseconds (`…Ms`), sizes bytes. A",
    "daemon reads its file at start and again on SIGHUP (what can change in place does; the rest is",
    "said in the log).",
    "",
  ];
  for (const d of DAEMONS) {
    const mod = await import(pathToFileURL(`${repo}dist/${d.file.replace(/\.ts$/, ".js")}`).href);
    const json = z.toJSONSchema(mod[d.schema], { io: "input", unrepresentable: "any" });
    parts.push(`## ${d.name} (\`banyan ${d.name}\`, ${d.yaml})`, "", ...keys(json, "", docs.get(d.name)), "");
  }
  return parts.join("\n");
}

const text = await render();
if (process.argv.includes("--check")) {
  let have = "";
  try {
    have = readFileSync(OUT, "utf8");
  } catch {
    // missing: stale
  }
  if (have !== text) {
    console.error("check:docs: docs/configuration.md is not what the config schemas give: run `npm run docs:config` and commit it");
    process.exit(1);
  }
  console.log("check:docs: docs/configuration.md is fresh");
} else {
  writeFileSync(OUT, text);
  console.log(`wrote ${OUT}`);
}
