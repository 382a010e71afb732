import { lookup } from "node:dns/promises";
import { BanyanError, Code } from "../core/errors.js";
import type { NodeRecord, RootRecord, Topology } from "./topology-file.js";

/** What the daemons ask of a topology file: their own record, their parent's address, their nodes. */
export function nodeRecord(t: Topology, name: string, source: string): NodeRecord {
  const rec = t.nodes.get(name);
  if (rec === undefined) {
    const hint = t.roots.some((r) => r.name === name) ? " (it is a root: run `banyan root`)" : "";
    throw new BanyanError(Code.NotFound, `${source}: node ${JSON.stringify(name)} is not in the topology${hint}`);
  }
  return rec;
}

export function rootRecord(t: Topology, name: string, source: string): RootRecord {
  const rec = t.roots.find((r) => r.name === name);
  if (rec === undefined) {
    throw new BanyanError(Code.NotFound, `${source}: root ${JSON.stringify(name)} is not in the topology (roots: ${t.roots.map((r) => r.name).join(", ")})`);
  }
  return rec;
}

/** The gRPC address of a node or root by name. */
export function treeAddress(t: Topology, name: string): string {
  const node = t.nodes.get(name);
  if (node !== undefined) return node.address;
  const root = t.roots.find((r) => r.name === name);
  if (root !== undefined) return root.address;
  throw new BanyanError(Code.NotFound, `topology: ${JSON.stringify(name)} is neither a node nor a root`);
}

/** The root a node's tree ends at (a root names itself): where every path up from it leads. */
export function rootOfNode(t: Topology, name: string): string {
  const tree = t.nodes.get(name)?.tree;
  if (tree === undefined) return name;
  return t.roots.find((r) => r.trees.includes(tree))?.name ?? name;
}

/** A node and every node below it in its tree (planned shape), depth first. */
export function subtreeOf(t: Topology, name: string): string[] {
  const out: string[] = [];
  const walk = (n: string): void => {
    out.push(n);
    for (const c of t.nodes.get(n)?.children ?? []) walk(c);
  };
  walk(name);
  return out;
}

/** The nodes of the trees a root terminates: the ones it reports up or down. */
export function nodesOfRoot(t: Topology, root: RootRecord): string[] {
  const trees = new Set(root.trees);
  const out: string[] = [];
  for (const [name, n] of t.nodes) if (trees.has(n.tree)) out.push(name);
  return out;
}

/** Depth below a root (its children are at 1) from which a subtree samples in one phase: see samplingBranch. */
export const PHASE_BRANCH_DEPTH = 3;

/**
 * The name whose hash sets a node's sampling phase: its planned ancestor at depth
 * PHASE_BRANCH_DEPTH (itself when it is that shallow, or not in the topology). A branch's nodes
 * sample in the same instant, so a relay forwards its whole subtree's tick in one batch and a root
 * link carries at most 1 + 2 + 4 of them a tick (binary trees); the 8 × 2³ = 64 branches of a
 * cluster spread over the interval. Per-node phases made every relay send a batch per child
 * arrival (up to one per flush, 50 a second): the relays' and roots' CPU per frame up by half.
 * A job's nodes (neighbours in a branch) also lose their agent's slice together, the kind of
 * noise a bulk-synchronous job feels least.
 */
export function samplingBranch(t: Topology, name: string): string {
  const path: string[] = [];
  for (let n: string | undefined = name; n !== undefined && path.length <= t.nodes.size; n = t.nodes.get(n)?.parent) {
    if (!t.nodes.has(n)) break;
    path.push(n);
  }
  return path.length >= PHASE_BRANCH_DEPTH ? path[path.length - PHASE_BRANCH_DEPTH]! : name;
}

/**
 * The address to bind for a topology address: an IP literal as it is, a host name as all
 * interfaces on that port (the name is how others reach this host, not necessarily a local address).
 */
export function bindAddress(addr: string): string {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (m === null) return addr;
  const host = m[1]!;
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[");
  return isIp ? addr : `0.0.0.0:${m[2]}`;
}

/**
 * The address to bind a tree port on: the topology's address only, a host name resolved to its
 * address (the tree port is not for every interface: without TLS, whoever reaches it is heard as a
 * child, so it listens only where the topology says children come).
 */
export async function treeBindAddress(addr: string, source: string): Promise<string> {
  const m = /^(.*):(\d+)$/.exec(addr);
  if (m === null) return addr;
  const host = m[1]!;
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.startsWith("[")) return addr;
  try {
    const { address, family } = await lookup(host);
    return family === 6 ? `[${address}]:${m[2]}` : `${address}:${m[2]}`;
  } catch (err) {
    throw new BanyanError(Code.InvalidConfig, `${source}: tree address ${JSON.stringify(addr)}: cannot resolve ${host} (${(err as Error).message}); set listen to bind another address`, { cause: err });
  }
}
