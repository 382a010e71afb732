import type { Topology } from "../../topology/topology-file.js";

/** Deeper than any tree Banyan plans (depth 14 at 100,000 nodes): a parent cycle in a hand-edited file ends here. */
const MAX_DEPTH = 64;

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

  /** Whether `child`'s link may carry `origin`: the origin is the child or below it. */
  carries(child: string, origin: string): boolean {
    let cur: string | undefined = origin;
    for (let k = 0; k < MAX_DEPTH && cur !== undefined; k++) {
      if (cur === child) return true;
      cur = this.topology.nodes.get(cur)?.parent;
    }
    return false;
  }
}
