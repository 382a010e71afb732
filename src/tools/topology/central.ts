import { BanyanError, Code } from "../../core/errors.js";
import { VERSION } from "../../core/version.js";
import { DEFAULT_HTTP_PORT, DEFAULT_TREE_PORT } from "./generate.js";
import { assertUnique } from "../../topology/hostlist.js";
import { TOPOLOGY_VERSION, type NodeRecord, type RootRecord, type Topology } from "../../topology/topology-file.js";

export interface CentralCluster {
  /** The `cluster` label its series get at the central roots. */
  readonly name: string;
  /** The cluster's roots (each uplinks on its own: a cluster's trees end at several roots). */
  readonly roots: readonly string[];
}

export interface CentralOptions {
  readonly clusters: readonly CentralCluster[];
  /** Central roots: the first is every cluster root's parent, the others its fallbacks, in order. */
  readonly roots: readonly string[];
  readonly port?: number;
  readonly httpPort?: number;
  /** Every host on 127.0.0.1 with its own ports from this base upward. */
  readonly local?: number | null;
  readonly now?: Date;
}

/** `siteA=rootA[1-2]` — the cluster's name, then its roots as a hostlist. */
export const CLUSTER_NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

/**
 * The topology of a central Banyan: one tree, whose root is the first central root, with every
 * cluster's roots as its direct children (tagged with their cluster) and the other central roots as
 * their fallbacks. A cluster root is never a relay for another cluster, so the tree is flat (fan-out
 * = the number of cluster roots), and one central root holds the whole cross-cluster view while the
 * others stand by. Nothing connects to a cluster root's address here: it is what `show` prints.
 */
export function generateCentralTopology(opts: CentralOptions): Topology {
  const port = opts.port ?? DEFAULT_TREE_PORT;
  const httpPort = opts.httpPort ?? DEFAULT_HTTP_PORT;
  const local = opts.local ?? null;
  if (opts.roots.length === 0) throw new BanyanError(Code.InvalidArgument, "--roots: no central roots given");
  if (opts.clusters.length === 0) throw new BanyanError(Code.InvalidArgument, "--cluster: no clusters given");
  assertUnique(opts.roots, "--roots");
  assertUnique(
    opts.clusters.map((c) => c.name),
    "--cluster names",
  );
  const members = opts.clusters.flatMap((c) => c.roots.map((r) => ({ root: r, cluster: c.name })));
  assertUnique(
    members.map((m) => m.root),
    "--cluster roots",
  );
  for (const c of opts.clusters) {
    if (!CLUSTER_NAME.test(c.name)) throw new BanyanError(Code.InvalidArgument, `--cluster: ${JSON.stringify(c.name)}: expected a cluster name of 1-64 letters, digits, '_', '.' or '-'`);
    if (c.roots.length === 0) throw new BanyanError(Code.InvalidArgument, `--cluster ${c.name}: no roots given`);
  }
  for (const m of members) if (opts.roots.includes(m.root)) throw new BanyanError(Code.InvalidArgument, `--cluster: ${m.root} is also a central root in --roots`);
  if (local !== null && local + 2 * opts.roots.length + members.length - 1 > 65535) throw new BanyanError(Code.InvalidArgument, `--local: ports from ${local} pass 65535; choose a lower base`);
  const at = (host: string, k: number, p: number): string => (local !== null ? `127.0.0.1:${local + k}` : `${host}:${p}`);
  const primary = opts.roots[0]!;
  const roots: RootRecord[] = opts.roots.map((name, k) => ({
    name,
    address: at(name, 2 * k, port),
    http: at(name, 2 * k + 1, httpPort),
    trees: k === 0 ? [0] : [],
    children: k === 0 ? members.map((m) => m.root) : [],
  }));
  const nodes = new Map<string, NodeRecord>();
  members.forEach((m, k) => {
    nodes.set(m.root, { tree: 0, slot: k, address: at(m.root, 2 * opts.roots.length + k, port), parent: primary, children: [], fallbacks: opts.roots.slice(1), cluster: m.cluster });
  });
  return {
    version: TOPOLOGY_VERSION,
    generated: { by: `banyan ${VERSION} topology central`, at: (opts.now ?? new Date()).toISOString() },
    params: { trees: 1, fanout: Math.max(1, members.length), port: local !== null ? null : port, httpPort: local !== null ? null : httpPort, local, switches: null },
    roots,
    nodes,
  };
}
