import { generateTopology } from "../src/tools/topology/index.js";
import type { NodeRecord, Topology } from "../src/topology/topology-file.js";
import { choosePortBase } from "./bench-ports.js";
import { samplingBranch, subtreeOf, treeAddress } from "../src/topology/topology-lookup.js";

/**
 * How a benchmark cluster is laid out on one machine: the top levels of every tree are real relays
 * (real code, real gRPC, in worker processes); below the frontier, each frontier relay's child
 * subtrees are simulated by leaf simulators that replay real encoded frames for every node of the
 * subtree over one real stream per child slot. One leaf is a real `banyan agent` with the procfs
 * source, for the agent's own cost.
 */
export interface SimulatedStream {
  /** The child slot the stream stands for (its Hello name). */
  readonly node: string;
  readonly tree: number;
  /** Its parent (a frontier relay) and fallbacks, with addresses. */
  readonly chain: readonly { name: string; address: string }[];
  /** Every origin whose frames the stream carries: the child and its whole subtree. */
  readonly origins: readonly string[];
  /** Whose sampling phase the stream's tick keeps: its top node's branch, as its agents would (samplingBranch). */
  readonly phaseOf: string;
}

export interface BenchPlan {
  readonly topology: Topology;
  /** Real relays, top-down. */
  readonly relays: readonly string[];
  /** Depth (hops to the root) of the deepest real relay. */
  readonly realDepth: number;
  /** Depth of the whole trees. */
  readonly depth: number;
  readonly streams: readonly SimulatedStream[];
  /** The leaf run by a real `banyan agent` (procfs), or null when the cluster is too small. */
  readonly realAgent: string | null;
  /** First port of the block the cluster listens on; the bench's Prometheus and exporter take the first two. */
  readonly portBase: number;
}

/** Ports of the block before the roots': the baseline's Prometheus and its direct-scrape exporter. */
export const BENCH_SERVICE_PORTS = 10;

/** Where a simulated node "listens": nothing does, and a connection there is refused at once. */
const NOWHERE = "127.0.0.1:1";

export function planBench(nodes: number, trees: number, roots: number, maxRealRelays: number, basePort: number): BenchPlan {
  const width = String(nodes).length;
  const names = Array.from({ length: nodes }, (_, k) => `sim${String(k + 1).padStart(width, "0")}`);
  const rootNames = Array.from({ length: roots }, (_, k) => `root${k + 1}`);
  const { topology } = generateTopology({ nodes: names, roots: rootNames, trees });
  const depthOf = new Map<string, number>();
  const depth = (n: string): number => {
    let d = depthOf.get(n);
    if (d === undefined) {
      const p = topology.nodes.get(n)!.parent;
      d = topology.nodes.has(p) ? depth(p) + 1 : 1;
      depthOf.set(n, d);
    }
    return d;
  };
  let maxDepth = 0;
  const byDepth = new Map<number, string[]>();
  for (const n of topology.nodes.keys()) {
    const d = depth(n);
    maxDepth = Math.max(maxDepth, d);
    let list = byDepth.get(d);
    if (list === undefined) byDepth.set(d, (list = []));
    list.push(n);
  }
  // The deepest level at which every relay down to it fits the budget; a relay needs children.
  let realDepth = 0;
  let count = 0;
  for (let d = 1; d < maxDepth; d++) {
    const level = (byDepth.get(d) ?? []).filter((n) => topology.nodes.get(n)!.children.length > 0);
    if (count + level.length > maxRealRelays) break;
    count += level.length;
    realDepth = d;
  }
  const relays = [...topology.nodes.keys()].filter((n) => depth(n) <= realDepth).sort((a, b) => depth(a) - depth(b));
  const real = new Set(relays);
  const streams: SimulatedStream[] = [];
  const streamFor = (child: string): SimulatedStream => {
    const rec = topology.nodes.get(child)!;
    const origins = subtreeOf(topology, child);
    return { node: child, tree: rec.tree, chain: [rec.parent, ...rec.fallbacks].map((n) => ({ name: n, address: "" })), origins, phaseOf: samplingBranch(topology, child) };
  };
  if (realDepth === 0) {
    // Too small or too tight a budget for relays: the top nodes' subtrees stream straight to the roots.
    for (const r of topology.roots) for (const c of r.children) streams.push(streamFor(c));
  } else {
    for (const r of relays) for (const c of topology.nodes.get(r)!.children) if (!real.has(c)) streams.push(streamFor(c));
  }
  // A real agent takes the place of one simulated leaf: a child slot of a real relay when one is a
  // leaf (its stream is then not simulated), else a leaf deeper in a simulated subtree (it walks its
  // fallback chain up to the first real relay, as a node under a dead parent would).
  let realAgent: string | null = null;
  const single = streams.findIndex((s) => s.origins.length === 1);
  if (single >= 0) {
    realAgent = streams[single]!.node;
    streams.splice(single, 1);
  } else {
    for (const s of streams) {
      const leaf = s.origins.find((o) => topology.nodes.get(o)!.children.length === 0 && o !== s.node);
      if (leaf !== undefined) {
        realAgent = leaf;
        break;
      }
    }
  }
  // Only roots and real relays listen: their ports form one block outside the ephemeral range.
  const portBase = choosePortBase(BENCH_SERVICE_PORTS + 2 * rootNames.length + relays.length, basePort);
  const local = listening(topology, relays, portBase + BENCH_SERVICE_PORTS);
  const withAddresses = streams.map((st) => ({ ...st, chain: st.chain.map((c) => ({ name: c.name, address: treeAddress(local, c.name) })) }));
  return { topology: local, relays, realDepth, depth: maxDepth, streams: withAddresses, realAgent, portBase };
}

/** The topology with 127.0.0.1 addresses: a port each for the roots (gRPC, HTTP) and the real relays, NOWHERE for the rest. */
function listening(t: Topology, relays: readonly string[], first: number): Topology {
  let port = first;
  const roots = t.roots.map((r) => ({ ...r, address: `127.0.0.1:${port++}`, http: `127.0.0.1:${port++}` }));
  const real = new Set(relays);
  const nodes = new Map<string, NodeRecord>();
  for (const [name, rec] of t.nodes) nodes.set(name, { ...rec, address: real.has(name) ? `127.0.0.1:${port++}` : NOWHERE });
  return { ...t, params: { ...t.params, port: null, httpPort: null, local: first }, roots, nodes };
}
