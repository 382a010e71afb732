import type { NodeRecord, Topology } from "../../src/topology/topology-file.js";
import { subtreeOf, treeAddress } from "../../src/topology/topology-lookup.js";
import type { BenchPlan, SimulatedStream } from "../bench-plan.js";

/** Where the bench itself runs on a lab: its scrapes and API calls leave from this host. */
export const OPS_HOST = "ops";

/**
 * A rack of the lab: the subtree of one real relay (its "top"), as one leaf switch would hold it:
 * the real relays and the real agent under that top each on a host of its own, and the simulated
 * subtrees under it on one host of the rack (a leaf simulator process).
 */
export interface LabRack {
  readonly name: string;
  /** The real relay at the rack's top (null when the cluster has none: every stream goes to the roots). */
  readonly top: string | null;
  /** Every host of the rack: its relays', the real agent's when it is inside, its simulator's. */
  readonly hosts: readonly string[];
  /** Every node of the rack (the top's subtree). */
  readonly nodes: readonly string[];
  /** The simulated streams its simulator host plays. */
  readonly streams: readonly SimulatedStream[];
}

/** A bench plan laid over emulated hosts: every root, real relay and the real agent on its own host. */
export interface LabLayout {
  readonly plan: BenchPlan;
  /** Every host, the bench's own (OPS_HOST) first. */
  readonly hosts: readonly string[];
  /** The host each root, real relay and the real agent runs on (its own name). */
  readonly hostOf: ReadonlyMap<string, string>;
  readonly racks: readonly LabRack[];
}

/**
 * Lays `plan` over hosts whose addresses `ipOf` gives: roots listen on their host's address at
 * `port` (tree) and `port + 1` (HTTP), real relays at `port`; every node's `switch` is its rack.
 * Racks are the subtrees of the real relays one level above the deepest real ones (the top level
 * when there are only one or two), so a rack holds real relays, simulated nodes and maybe the agent.
 */
export function layLab(plan: BenchPlan, port: number, ipOf?: (host: string) => string): LabLayout {
  const t = plan.topology;
  const depthOf = (n: string): number => (t.nodes.has(t.nodes.get(n)!.parent) ? depthOf(t.nodes.get(n)!.parent) + 1 : 1);
  const rackDepth = Math.max(1, plan.realDepth - 1);
  const tops = plan.realDepth === 0 ? [] : plan.relays.filter((r) => depthOf(r) === rackDepth);
  const topOf = (n: string): string | null => {
    for (let x = n; t.nodes.has(x); x = t.nodes.get(x)!.parent) if (depthOf(x) === rackDepth && tops.includes(x)) return x;
    return null;
  };
  const hostOf = new Map<string, string>();
  for (const r of t.roots) hostOf.set(r.name, r.name);
  for (const r of plan.relays) hostOf.set(r, r);
  if (plan.realAgent !== null) hostOf.set(plan.realAgent, plan.realAgent);
  const racks: LabRack[] = [];
  const rackOfNode = new Map<string, string>();
  const groups: (string | null)[] = tops.length > 0 ? tops : [null];
  groups.forEach((top, k) => {
    const name = `rack${k + 1}`;
    const nodes = top === null ? [...t.nodes.keys()] : subtreeOf(t, top);
    for (const n of nodes) rackOfNode.set(n, name);
    const streams = plan.streams.filter((s) => (top === null ? true : topOf(s.node) === top));
    const hosts = [...nodes.filter((n) => hostOf.has(n)), ...(streams.length > 0 ? [name] : [])];
    racks.push({ name, top, hosts, nodes, streams });
  });
  // Nodes above every rack's top (relays between the roots and the racks) stand in a rack of their own.
  const hosts = [OPS_HOST, ...t.roots.map((r) => r.name), ...plan.relays, ...(plan.realAgent !== null ? [plan.realAgent] : []), ...racks.filter((r) => r.streams.length > 0).map((r) => r.name)];
  const ip = ipOf ?? ((h: string) => `10.0.${Math.floor(hosts.indexOf(h) / 250)}.${1 + (hosts.indexOf(h) % 250)}`);
  const roots = t.roots.map((r) => ({ ...r, address: `${ip(r.name)}:${port}`, http: `${ip(r.name)}:${port + 1}` }));
  const nodes = new Map<string, NodeRecord>();
  for (const [name, rec] of t.nodes) {
    const address = plan.relays.includes(name) ? `${ip(name)}:${port}` : rec.address;
    const rack = rackOfNode.get(name);
    nodes.set(name, { ...rec, address, ...(rack !== undefined ? { switch: rack } : {}) });
  }
  const topology: Topology = { ...t, params: { ...t.params, local: null }, roots, nodes };
  const relocate = (s: SimulatedStream): SimulatedStream => ({ ...s, chain: s.chain.map((c) => ({ name: c.name, address: treeAddress(topology, c.name) })) });
  return {
    plan: { ...plan, topology, streams: plan.streams.map(relocate) },
    hosts,
    hostOf,
    racks: racks.map((r) => ({ ...r, streams: r.streams.map(relocate) })),
  };
}
