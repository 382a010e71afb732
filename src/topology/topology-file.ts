import { readFileSync, writeFileSync, renameSync } from "node:fs";
import { z } from "zod";
import { BanyanError, Code } from "../core/errors.js";

/**
 * The topology file: versioned JSON that an administrator can read. Each node record is written
 * on one line, so `grep node0042 topology.json` shows all of it.
 */

export const TOPOLOGY_VERSION = 1;

export interface TopologyParams {
  readonly trees: number;
  readonly fanout: number;
  /** gRPC (tree) port of every host; null with `local`, where each host has its own. */
  readonly port: number | null;
  /** HTTP port of the roots; null with `local`. */
  readonly httpPort: number | null;
  /** Base port of a one-machine cluster on 127.0.0.1, or null. */
  readonly local: number | null;
  /** Path of the Slurm topology.conf used for rack placement, or null. */
  readonly switches: string | null;
}

export interface RootRecord {
  readonly name: string;
  /** gRPC listen address, host:port. */
  readonly address: string;
  /** HTTP address (Prometheus /metrics), host:port. */
  readonly http: string;
  /** Trees this root terminates. */
  readonly trees: readonly number[];
  /** Top-level nodes of its trees. */
  readonly children: readonly string[];
}

export interface NodeRecord {
  readonly tree: number;
  /** Position in its tree (0-based heap order under the root); what `--previous` keeps stable. */
  readonly slot: number;
  readonly address: string;
  /** A node or a root name. */
  readonly parent: string;
  readonly children: readonly string[];
  /** Ordered: ancestors above the parent, the tree's root, then the other roots. */
  readonly fallbacks: readonly string[];
  /** Leaf switch from topology.conf, when known. */
  readonly switch?: string;
  /** A dedicated relay host (`banyan relay`): it forwards its children's frames and collects nothing. */
  readonly relay?: true;
  /**
   * In a central topology (`banyan topology central`): this "node" is a cluster's root, and its link
   * carries that cluster's origins, named `<cluster>/<node>`.
   */
  readonly cluster?: string;
}

export interface Topology {
  readonly version: typeof TOPOLOGY_VERSION;
  readonly generated: { readonly by: string; readonly at: string };
  readonly params: TopologyParams;
  readonly roots: readonly RootRecord[];
  /** In the order the node list gave them. */
  readonly nodes: ReadonlyMap<string, NodeRecord>;
}

const name = z.string().min(1);
const address = z.string().regex(/^[^\s:]+:\d{1,5}$/, "host:port");
const count = z.number().int().nonnegative();

// Unknown fields are accepted and dropped: later versions of Banyan may add some (version stays 1).
const fileSchema = z.object({
  version: z.literal(TOPOLOGY_VERSION),
  generated: z.object({ by: z.string(), at: z.string() }).optional(),
  params: z.object({
    trees: z.number().int().positive(),
    fanout: z.number().int().positive(),
    port: count.nullable().optional(),
    httpPort: count.nullable().optional(),
    local: count.nullable().optional(),
    switches: z.string().nullable().optional(),
  }),
  roots: z
    .array(
      z.object({
        name,
        address,
        http: address,
        trees: z.array(count),
        children: z.array(name).default([]),
      }),
    )
    .min(1),
  nodes: z.record(
    z.string(),
    z.object({
      tree: count,
      slot: count.optional(),
      address,
      parent: name,
      children: z.array(name),
      fallbacks: z.array(name),
      switch: z.string().optional(),
      relay: z.literal(true).optional(),
      cluster: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, "a cluster name of letters, digits, '_', '.' or '-'").optional(),
    }),
  ),
});

/** Parses a topology from already-decoded JSON; `source` names the file in errors. */
export function parseTopology(raw: unknown, source: string): Topology {
  const result = fileSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const lines = result.error.issues.slice(0, 20).map((issue) => {
      const path = issue.path.map(String).join(".") || "(top)";
      const got = "input" in issue ? ` (got ${JSON.stringify(issue.input)})` : "";
      return `${source}: ${path}: ${issue.message}${got}`;
    });
    throw new BanyanError(Code.InvalidConfig, lines.join("\n"));
  }
  const f = result.data;
  const nodes = new Map<string, NodeRecord>();
  let i = 0;
  for (const [nodeName, n] of Object.entries(f.nodes)) {
    const rec: NodeRecord = {
      tree: n.tree,
      slot: n.slot ?? i,
      address: n.address,
      parent: n.parent,
      children: n.children,
      fallbacks: n.fallbacks,
      ...(n.switch !== undefined ? { switch: n.switch } : {}),
      ...(n.relay === true ? { relay: true as const } : {}),
      ...(n.cluster !== undefined ? { cluster: n.cluster } : {}),
    };
    nodes.set(nodeName, rec);
    i++;
  }
  return {
    version: TOPOLOGY_VERSION,
    generated: f.generated ?? { by: "unknown", at: "unknown" },
    params: {
      trees: f.params.trees,
      fanout: f.params.fanout,
      port: f.params.port ?? null,
      httpPort: f.params.httpPort ?? null,
      local: f.params.local ?? null,
      switches: f.params.switches ?? null,
    },
    roots: f.roots,
    nodes,
  };
}

/** Reads and parses a topology file; every failure names the file. */
export function readTopologyFile(path: string): Topology {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BanyanError(Code.NotFound, `cannot read topology ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BanyanError(Code.InvalidConfig, `${path}: not JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  return parseTopology(raw, path);
}

/** Serialises a topology: readable top level, one line per node and per root. */
export function formatTopology(t: Topology): string {
  const out: string[] = [];
  out.push("{");
  out.push(`  "version": ${t.version},`);
  out.push(`  "generated": ${JSON.stringify(t.generated)},`);
  out.push(`  "params": ${JSON.stringify(t.params)},`);
  out.push(`  "roots": [`);
  t.roots.forEach((r, k) => out.push(`    ${JSON.stringify(r)}${k + 1 < t.roots.length ? "," : ""}`));
  out.push("  ],");
  out.push(`  "nodes": {`);
  let k = 0;
  for (const [nodeName, n] of t.nodes) {
    k++;
    out.push(`    ${JSON.stringify(nodeName)}: ${JSON.stringify(n)}${k < t.nodes.size ? "," : ""}`);
  }
  out.push("  }");
  out.push("}");
  return out.join("\n") + "\n";
}

/** Writes atomically (temp file + rename), so a daemon reloading on SIGHUP never reads half a file. */
export function writeTopologyFile(path: string, t: Topology): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, formatTopology(t));
  renameSync(tmp, path);
}
