#!/usr/bin/env node
// Enforces the one-way import flow (docs/design.md, "Layout"), and refuses circles of imports:
//   gen → core → topology → series → wire → node → agent | relay | root → cli, with tools (the
//   admin's: topology generation and checks, certificates, dashboards, the usage report) beside the
//   daemons, on core, topology and series only; inside src/root its rooms (ROOMS) in the data path's
//   order. The daemons never import each other: each composes itself (agent-daemon.ts, …). bench/
//   enters node, agent, relay, root and tools only by their front doors (index.ts: DOORS).
// Usage: node scripts/check-imports.mjs [--root DIR]   (exit 1 and one line per violation)
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

const ALLOWED = {
  "src/gen": ["src/gen"],
  "src/core": ["src/gen", "src/core"],
  "src/topology": ["src/core", "src/topology"],
  "src/series": ["src/gen", "src/core", "src/series"],
  "src/wire": ["src/gen", "src/core", "src/topology", "src/series", "src/wire"],
  "src/node": ["src/gen", "src/core", "src/topology", "src/series", "src/wire", "src/node"],
  "src/agent": ["src/gen", "src/core", "src/topology", "src/series", "src/wire", "src/node", "src/agent"],
  "src/relay": ["src/gen", "src/core", "src/topology", "src/series", "src/wire", "src/node", "src/relay"],
  "src/root": ["src/gen", "src/core", "src/topology", "src/series", "src/wire", "src/node", "src/root"],
  "src/tools": ["src/core", "src/topology", "src/series", "src/tools"],
  "src/cli": ["src/gen", "src/core", "src/topology", "src/series", "src/wire", "src/node", "src/agent", "src/relay", "src/root", "src/tools", "src/cli", "bench"],
  bench: ["src/gen", "src/core", "src/topology", "src/series", "src/wire", "src/node", "src/agent", "src/relay", "src/root", "src/tools", "src/cli", "bench"],
};

/**
 * Rooms inside a layer, each with the rooms of its layer it may import (their order is the data
 * path's: what is imported sits lower). The layer's own top files (src/root/root-daemon.ts, …) compose
 * the rooms: they may import every room, and no room imports them.
 */
const ROOMS = {
  "src/root": {
    exposition: [],
    events: ["exposition"],
    outputs: ["exposition", "events"],
    ingest: ["exposition", "events", "outputs"],
    fleet: ["exposition", "events", "outputs", "ingest"],
    api: ["exposition", "events", "outputs", "ingest", "fleet"],
    central: ["exposition", "events", "outputs", "ingest", "fleet"],
  },
};

/**
 * The layers bench/ enters only by a front door: the layer's index.ts, or a room's (src/root/ingest/index.ts,
 * src/tools/topology/index.ts). What a door does not export is the room's own business.
 */
const DOORS = ["src/node", "src/agent", "src/relay", "src/root", "src/tools"];

/** Why bench/ may not import `targetFile` of `target`, or null when it is a front door (or the layer has none). */
function benchViolation(rel, targetFile, target, spec) {
  if (!DOORS.includes(target)) return null;
  const door = `${unitOf(targetFile)}/index.ts`;
  if (targetFile.split(sep).join("/") === door) return null;
  return `${rel}: imports ${spec}, inside ${target}: bench/ enters ${target} by its front door (${door}; export from there what the bench needs)`;
}

/** The room of a file inside its layer (`ingest` for src/root/ingest/root-store.ts), "" for the layer's top files, null where the layer has no rooms. */
function roomOf(rel, layer) {
  if (!(layer in ROOMS)) return null;
  const parts = rel.split(sep);
  return parts.length > 3 ? parts[2] : "";
}

function roomViolation(rel, from, targetFile, target, spec) {
  if (from !== target) return null;
  const a = roomOf(rel, from);
  const b = roomOf(targetFile, target);
  if (a === null || a === b) return null;
  const rooms = ROOMS[from];
  if (a !== "" && !(a in rooms)) return `${rel}: ${from}/${a} is not a room check:imports knows (add it to ROOMS, with what it may import)`;
  if (a === "") return null;
  if (b === "") return `${rel}: imports ${spec}, a top file of ${from}, which composes the rooms: an arrow back up (move what ${a}/ needs into a room)`;
  if (!rooms[a].includes(b)) return `${rel}: imports ${spec} (${from}/${b}), but ${from}/${a} may only import ${rooms[a].length > 0 ? rooms[a].map((r) => `${from}/${r}`).join(", ") : "no other room"}: an arrow back up`;
  return null;
}

function layerOf(rel) {
  const parts = rel.split(sep);
  if (parts[0] === "src" && parts.length > 2) return `src/${parts[1]}`;
  if (parts[0] === "bench") return parts[0];
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

/** The room of a file: a room of src/root or src/tools (`src/root/ingest`), else its layer (or its top folder). */
function unitOf(rel) {
  const parts = rel.split(sep);
  const layer = layerOf(rel) ?? parts[0];
  return (layer === "src/root" || layer === "src/tools") && parts.length > 3 ? parts.slice(0, 3).join("/") : layer;
}

/** The module graph by room: each room, its files, and the rooms it imports with how many imports each. */
export function roomGraph(root) {
  const { graph } = scan(root);
  const rooms = new Map();
  for (const [file, targets] of graph) {
    const from = unitOf(file);
    let r = rooms.get(from);
    if (r === undefined) rooms.set(from, (r = { files: 0, to: new Map() }));
    r.files++;
    for (const t of targets) {
      const to = unitOf(t);
      if (to !== from) r.to.set(to, (r.to.get(to) ?? 0) + 1);
    }
  }
  return rooms;
}

export function findImportViolations(root) {
  return scan(root).violations;
}

function scan(root) {
  const violations = [];
  /** file → the files it imports (relative to root, .ts), type-only imports included: a circle of types is still a circle. */
  const graph = new Map();
  for (const top of ["src", "bench"]) {
    for (const file of tsFiles(join(root, top))) {
      const rel = relative(root, file);
      const from = layerOf(rel);
      const edges = [];
      graph.set(rel, edges);
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(IMPORT)) {
        const spec = m[1] ?? m[2];
        if (!spec.startsWith(".")) continue;
        const targetFile = relative(root, resolve(dirname(file), spec)).replace(/\.js$/, ".ts");
        edges.push(targetFile);
        if (from === null || !(from in ALLOWED)) continue;
        const target = layerOf(targetFile);
        if (target !== null && !ALLOWED[from].includes(target)) {
          violations.push(`${rel}: imports ${spec} (${target}), but ${from} may only import ${ALLOWED[from].join(", ")}`);
        }
        const up = roomViolation(rel, from, targetFile, target, spec);
        if (up !== null) violations.push(up);
        const inside = from === "bench" && target !== null ? benchViolation(rel, targetFile, target, spec) : null;
        if (inside !== null) violations.push(inside);
      }
    }
  }
  for (const circle of circles(graph)) violations.push(`a circle of imports: ${[...circle, circle[0]].join(" → ")} (move what both need down, or into one of them)`);
  return { violations, graph };
}

/** The import circles of `graph` (its strongly connected parts of two files or more, Tarjan's), each as one path through its files. */
function circles(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const found = [];
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
    }
    if (low.get(v) !== index.get(v)) return;
    const part = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      part.push(w);
    } while (w !== v);
    if (part.length > 1) found.push(pathThrough(graph, new Set(part)));
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A closed walk inside one strongly connected part, from its first file (sorted) back to it: what a reader follows. */
function pathThrough(graph, part) {
  const start = [...part].sort()[0];
  const prev = new Map([[start, null]]);
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift();
    for (const w of graph.get(v) ?? []) {
      if (!part.has(w)) continue;
      if (w === start) {
        const path = [];
        for (let x = v; x !== null; x = prev.get(x)) path.unshift(x);
        return path;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

const args = process.argv.slice(2);
const rootArg = args.includes("--root") ? args[args.indexOf("--root") + 1] : undefined;
const root = resolve(rootArg ?? new URL("..", import.meta.url).pathname);
if (args.includes("--graph")) {
  // The rooms and the arrows between them, the rooms of the lowest layers first.
  const order = Object.keys(ALLOWED);
  const rank = (u) => {
    const layer = order.indexOf(u.split("/").slice(0, u.startsWith("src/") ? 2 : 1).join("/"));
    const rooms = ROOMS[u.split("/").slice(0, 2).join("/")];
    return layer * 100 + (rooms !== undefined ? Object.keys(rooms).indexOf(u.split("/")[2]) + 1 : 0);
  };
  const rooms = roomGraph(root);
  for (const [u, r] of [...rooms].sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]))) {
    const to = [...r.to].sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} (${n})`);
    console.log(`${u} (${r.files} files)${to.length > 0 ? ` → ${to.join(", ")}` : ""}`);
  }
}
const violations = findImportViolations(root);
for (const v of violations) console.error(`check:imports: ${v}`);
if (violations.length > 0) process.exit(1);
console.log("check:imports: import flow respected");
