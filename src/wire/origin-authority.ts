import type { Topology } from "../topology/topology-file.js";

/** Deeper than any tree Banyan plans (depth 14 at 100,000 nodes): a parent cycle in a hand-edited file ends here. */
const MAX_DEPTH = 64;
/** A host name's limit (RFC 1035: 253 characters). */
const MAX_NODE_NAME = 253;

/**
 * Who may speak for whom: a child link may carry only origins of its planned subtree (itself and
 * the nodes below it in the topology). Failover never breaks the rule (a node's fallbacks are its
 * ancestors and the roots, and it carries the same subtree to each), while a peer that names another
 * node's origin, or a node the topology does not have, is refused at the first hop. Also what bounds
 * the state a peer can make a relay or root keep (routes, sequences, origins at the root): the
 * topology's nodes, no more. Cost: a walk up the parent chain (≤ depth lookups) when an origin first
 * arrives on a stream; the stream's known origins skip it.
 */
export class OriginAuthority {
  constructor(private topology: Topology) {}

  /** Follows a reloaded topology. */
  setTopology(topology: Topology): void {
    this.topology = topology;
  }

  /** A node the topology has (a Hello from anything else is refused). */
  knows(node: string): boolean {
    return this.topology.nodes.has(node);
  }

  /**
   * Whether `child`'s link may carry `origin`: the origin is the child or below it; for a cluster's
   * root at a central root, an origin `<its cluster>/<name>` (the cluster's own topology vouched for
   * the name; the central one bounds how many through the cluster's series limit).
   */
  carries(child: string, origin: string): boolean {
    const cluster = this.topology.nodes.get(child)?.cluster;
    if (cluster !== undefined) {
      return origin.length > cluster.length + 1 && origin.length <= cluster.length + 1 + MAX_NODE_NAME && origin.startsWith(cluster) && origin[cluster.length] === "/" && origin.indexOf("/", cluster.length + 1) < 0;
    }
    let cur: string | undefined = origin;
    for (let k = 0; k < MAX_DEPTH && cur !== undefined; k++) {
      if (cur === child) return true;
      cur = this.topology.nodes.get(cur)?.parent;
    }
    return false;
  }
}
