import { BanyanError, Code } from "../../core/errors.js";
import { VERSION } from "../../core/version.js";
import { assertUnique } from "../../topology/hostlist.js";
import { freshPlacement, stablePlacement, type Placement } from "./placement.js";
import type { SwitchLayout } from "./switch-layout.js";
import { TOPOLOGY_VERSION, type NodeRecord, type RootRecord, type Topology } from "../../topology/topology-file.js";
import { firstChildSlot, parentSlot } from "./tree-slots.js";

/**
 * Default gRPC (tree) port. Chosen away from the peers' defaults: Prometheus 9090, Pushgateway 9091,
 * Alertmanager 9093/9094, node_exporter 9100, dcgm-exporter 9400, Slurm exporter 8080.
 */
export const DEFAULT_TREE_PORT = 7470;
/** Default HTTP port of a root (Prometheus /metrics). */
export const DEFAULT_HTTP_PORT = 7471;
export const DEFAULT_TREES = 8;
export const DEFAULT_FANOUT = 2;

export interface GenerateOptions {
  readonly nodes: readonly string[];
  readonly roots: readonly string[];
  /**
   * Dedicated relay hosts: dealt round-robin to the trees and placed at the top of each (right
   * under the root), so they carry the most traffic and no compute node has to.
   */
  readonly relays?: readonly string[];
  readonly trees?: number;
  readonly fanout?: number;
  readonly port?: number;
  readonly httpPort?: number;
  /** Put every host on 127.0.0.1 with its own ports from this base upward. */
  readonly local?: number | null;
  readonly switches?: { readonly path: string; readonly layout: SwitchLayout } | null;
  /** Keep nodes where this earlier topology had them. */
  readonly previous?: Topology | null;
  readonly now?: Date;
}

export interface GenerateResult {
  readonly topology: Topology;
  /** Things worth telling the administrator that do not stop generation. */
  readonly warnings: readonly string[];
}

export function generateTopology(opts: GenerateOptions): GenerateResult {
  const trees = opts.trees ?? DEFAULT_TREES;
  const fanout = opts.fanout ?? DEFAULT_FANOUT;
  const port = opts.port ?? DEFAULT_TREE_PORT;
  const httpPort = opts.httpPort ?? DEFAULT_HTTP_PORT;
  const local = opts.local ?? null;
  const layout = opts.switches?.layout ?? null;
  const warnings: string[] = [];

  checkInt("--trees", trees, 1, 4096);
  checkInt("--fanout", fanout, 1, 1024);
  checkInt("--port", port, 1, 65535);
  checkInt("--http-port", httpPort, 1, 65535);
  if (opts.nodes.length === 0) throw new BanyanError(Code.InvalidArgument, "--nodes: no nodes given");
  if (opts.roots.length === 0) throw new BanyanError(Code.InvalidArgument, "--roots: no roots given");
  assertUnique(opts.nodes, "--nodes");
  assertUnique(opts.roots, "--roots");
  const relays = opts.relays ?? [];
  assertUnique(relays, "--relays");
  const nodeSet = new Set(opts.nodes);
  for (const r of opts.roots) {
    if (nodeSet.has(r)) throw new BanyanError(Code.InvalidArgument, `--roots: ${r} is also a compute node in --nodes`);
  }
  for (const r of relays) {
    if (nodeSet.has(r)) throw new BanyanError(Code.InvalidArgument, `--relays: ${r} is also a compute node in --nodes`);
    if (opts.roots.includes(r)) throw new BanyanError(Code.InvalidArgument, `--relays: ${r} is also a root in --roots`);
  }
  if (local !== null) {
    checkInt("--local", local, 1, 65535);
    const last = local + 2 * opts.roots.length + opts.nodes.length + relays.length - 1;
    if (last > 65535) {
      throw new BanyanError(Code.InvalidArgument, `--local: ports ${local}..${last} pass 65535; choose a lower base`);
    }
  } else if (port === httpPort) {
    throw new BanyanError(Code.InvalidArgument, `--http-port: ${httpPort} is the same as --port`);
  }
  if (trees > opts.nodes.length) warnings.push(`${trees} trees for ${opts.nodes.length} nodes: some trees are empty`);
  if (opts.roots.length > trees) warnings.push(`${opts.roots.length} roots for ${trees} trees: some roots terminate no tree`);
  if (relays.length > 0 && relays.length < trees) warnings.push(`${relays.length} relays for ${trees} trees: trees ${relays.length}..${trees - 1} have none`);
  if (layout !== null) {
    const unplaced = opts.nodes.filter((n) => !layout.switchOf.has(n)).length;
    if (unplaced > 0) warnings.push(`${unplaced} nodes are on no switch of ${opts.switches!.path}`);
  }

  let placement: Placement;
  const previous = opts.previous === undefined || opts.previous === null ? null : computeOnly(opts.previous);
  if (previous !== null && (previous.params.trees !== trees || previous.params.fanout !== fanout)) {
    warnings.push(
      `--previous has trees=${previous.params.trees} fanout=${previous.params.fanout}; ` +
        `with trees=${trees} fanout=${fanout} every node is placed afresh`,
    );
    placement = freshPlacement(opts.nodes, trees, fanout, layout);
  } else if (previous !== null) {
    placement = stablePlacement(opts.nodes, trees, fanout, layout, previous);
  } else {
    placement = freshPlacement(opts.nodes, trees, fanout, layout);
  }

  // Each tree's relays take its top slots; its compute nodes follow in the placement's order.
  const relaysOf = (t: number): string[] => relays.filter((_, k) => k % trees === t);
  const slotNames = placement.slotNames.map((names, t) => [...relaysOf(t), ...names]);
  const relaySet = new Set(relays);

  const rootOfTree = (t: number): string => opts.roots[t % opts.roots.length]!;
  const rootAddress = (k: number): { address: string; http: string } =>
    local !== null
      ? { address: `127.0.0.1:${local + 2 * k}`, http: `127.0.0.1:${local + 2 * k + 1}` }
      : { address: `${opts.roots[k]}:${port}`, http: `${opts.roots[k]}:${httpPort}` };
  const nodeAddress = new Map<string, string>();
  [...opts.nodes, ...relays].forEach((n, k) =>
    nodeAddress.set(n, local !== null ? `127.0.0.1:${local + 2 * opts.roots.length + k}` : `${n}:${port}`),
  );

  // The other roots, in a fixed rotation starting after the tree's own: tree t falls back to the
  // root of tree t+1, then t+2, … so the load of a lost root spreads over the others.
  const otherRoots = (t: number): string[] => {
    const own = rootOfTree(t);
    const seen = new Set([own]);
    const out: string[] = [];
    for (let k = 1; k < trees + opts.roots.length; k++) {
      const r = k < trees ? rootOfTree((t + k) % trees) : opts.roots[k - trees]!;
      if (!seen.has(r)) {
        seen.add(r);
        out.push(r);
      }
    }
    return out;
  };

  const records = new Map<string, NodeRecord>();
  const rootChildren = new Map<string, string[]>(opts.roots.map((r) => [r, []]));
  slotNames.forEach((names, t) => {
    const root = rootOfTree(t);
    const tail = [root, ...otherRoots(t)];
    for (let s = 0; s < names.length; s++) {
      const name = names[s]!;
      const p = parentSlot(s, fanout);
      const children: string[] = [];
      const first = firstChildSlot(s, fanout);
      for (let c = first; c < first + fanout && c < names.length; c++) children.push(names[c]!);
      const fallbacks: string[] = [];
      if (p >= 0) for (let a = parentSlot(p, fanout); a >= 0; a = parentSlot(a, fanout)) fallbacks.push(names[a]!);
      for (const r of p >= 0 ? tail : tail.slice(1)) fallbacks.push(r);
      if (p < 0) rootChildren.get(root)!.push(name);
      const sw = layout?.switchOf.get(name);
      records.set(name, {
        tree: t,
        slot: s,
        address: nodeAddress.get(name)!,
        parent: p >= 0 ? names[p]! : root,
        children,
        fallbacks,
        ...(sw !== undefined ? { switch: sw } : {}),
        ...(relaySet.has(name) ? { relay: true as const } : {}),
      });
    }
  });

  // Keep the order of the node list in the file, the relays after it.
  const nodes = new Map<string, NodeRecord>();
  for (const n of [...opts.nodes, ...relays]) nodes.set(n, records.get(n)!);
  const roots: RootRecord[] = opts.roots.map((name, k) => ({
    name,
    ...rootAddress(k),
    trees: Array.from({ length: trees }, (_, t) => t).filter((t) => rootOfTree(t) === name),
    children: rootChildren.get(name)!,
  }));

  return {
    topology: {
      version: TOPOLOGY_VERSION,
      generated: { by: `banyan ${VERSION}`, at: (opts.now ?? new Date()).toISOString() },
      params: {
        trees,
        fanout,
        port: local === null ? port : null,
        httpPort: local === null ? httpPort : null,
        local,
        switches: opts.switches?.path ?? null,
      },
      roots,
      nodes,
    },
    warnings,
  };
}

/**
 * An earlier topology as the compute nodes' placement saw it: without its relays, each node's slot
 * counted from below its tree's relays (so `--previous` keeps nodes where they were).
 */
function computeOnly(t: Topology): Topology {
  const relaysPerTree = new Map<number, number>();
  for (const r of t.nodes.values()) if (r.relay === true) relaysPerTree.set(r.tree, (relaysPerTree.get(r.tree) ?? 0) + 1);
  if (relaysPerTree.size === 0) return t;
  const nodes = new Map<string, NodeRecord>();
  for (const [n, r] of t.nodes) if (r.relay !== true) nodes.set(n, { ...r, slot: r.slot - (relaysPerTree.get(r.tree) ?? 0) });
  return { ...t, nodes };
}

function checkInt(flag: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BanyanError(Code.InvalidArgument, `${flag}: got ${value}, expected an integer from ${min} to ${max}`);
  }
}
