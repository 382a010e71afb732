#!/usr/bin/env node
// Enforces the one-way import flow of ../shared/STYLE.md:
//   gen → core → series → wire → agent | relay | root → cli;  topology/ uses only src/core, and
//   the layers that start daemons (wire's tree node, the daemons, cli) may read it; bench/ may use
//   anything. The daemons never import each other: each composes itself (agent-daemon.ts, …).
// Usage: node scripts/check-imports.mjs [--root DIR]   (exit 1 and one line per violation)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const ALLOWED = {
  "src/gen": ["src/gen"],
  "src/core": ["src/gen", "src/core"],
  "src/series": ["src/gen", "src/core", "src/series"],
  "src/wire": ["src/gen", "src/core", "src/series", "src/wire", "topology"],
  "src/agent": ["src/gen", "src/core", "src/series", "src/wire", "src/agent", "topology"],
  "src/relay": ["src/gen", "src/core", "src/series", "src/wire", "src/relay", "topology"],
  "src/root": ["src/gen", "src/core", "src/series", "src/wire", "src/root", "topology"],
  "src/cli": ["src/gen", "src/core", "src/series", "src/wire", "src/agent", "src/relay", "src/root", "src/cli", "topology", "bench"],
  topology: ["src/core", "topology"],
  bench: ["src/gen", "src/core", "src/series", "src/wire", "src/agent", "src/relay", "src/root", "src/cli", "topology", "bench"],
};

function layerOf(rel) {
  const parts = rel.split(sep);
  if (parts[0] === "src" && parts.length > 2) return `src/${parts[1]}`;
  if (parts[0] === "topology" || parts[0] === "bench") return parts[0];
  return null;
}

function* tsFiles(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) yield* tsFiles(p);
    else if (p.endsWith(".ts")) yield p;
  }
}

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

export function findImportViolations(root) {
  const violations = [];
  for (const top of ["src", "topology", "bench"]) {
    for (const file of tsFiles(join(root, top))) {
      const rel = relative(root, file);
      const from = layerOf(rel);
      if (from === null || !(from in ALLOWED)) continue;
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2];
        if (!spec.startsWith(".")) continue;
        const target = layerOf(relative(root, resolve(dirname(file), spec)));
        if (target !== null && !ALLOWED[from].includes(target)) {
          violations.push(`${rel}: imports ${spec} (${target}), but ${from} may only import ${ALLOWED[from].join(", ")}`);
        }
      }
    }
  }
  return violations;
}

const args = process.argv.slice(2);
const rootArg = args[0] === "--root" ? args[1] : undefined;
const root = resolve(rootArg ?? new URL("..", import.meta.url).pathname);
const violations = findImportViolations(root);
for (const v of violations) console.error(`check:imports: ${v}`);
if (violations.length > 0) process.exit(1);
console.log("check:imports: import flow respected");
