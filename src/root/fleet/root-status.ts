import type { OriginState } from "../ingest/origin-state.js";
import type { RootStore } from "../ingest/root-store.js";

/** What the root knows of the topology for its status page (plain data: the root imports no topology code). */
export interface StatusPlan {
  readonly root: string;
  /** Trees this root terminates. */
  readonly trees: readonly number[];
  readonly treeOf: ReadonlyMap<string, number>;
  readonly plannedParent: ReadonlyMap<string, string>;
  readonly nodesOfTree: ReadonlyMap<number, readonly string[]>;
  readonly rootOfTree: ReadonlyMap<number, string>;
  /** Leaf switch of a node, when the topology knows it (events carry it as a label). */
  readonly switchOf?: ReadonlyMap<string, string>;
  /** Labels from the root's config (events.nodeLabels) per node. */
  readonly labelsOf?: ReadonlyMap<string, Readonly<Record<string, string>>>;
}

export interface TreeStatus {
  readonly tree: number;
  readonly planned_root: string;
  /** True for a tree this root terminates; false for guests that failed over to it. */
  readonly own: boolean;
  readonly nodes: number;
  readonly up: number;
  /** Own trees: nodes not up here (they may be up at another root). */
  readonly down_nodes: readonly string[];
  /** Foreign trees: the nodes up here. */
  readonly guest_nodes: readonly string[];
  readonly away_nodes: readonly { node: string; parent: string; planned: string }[];
  readonly failovers_1h: number;
  readonly resyncs_1h: number;
}

export interface RootStatusReport {
  readonly root: string;
  readonly time: string;
  readonly trees: readonly TreeStatus[];
}

const HOUR_MS = 3_600_000;

/**
 * /api/v1/status of a root: per tree, who is up or down here, who is attached away from its
 * planned parent (from each node's banyan_node_parent_info), failovers (each node's own count for
 * the last hour) and the resyncs this root asked for in the last hour.
 */
export class RootStatus {
  private resyncs: { at: number; tree: number }[] = [];

  constructor(private plan: StatusPlan) {}

  setPlan(plan: StatusPlan): void {
    this.plan = plan;
  }

  recordResync(origin: string, now = Date.now()): void {
    this.resyncs.push({ at: now, tree: this.plan.treeOf.get(origin) ?? -1 });
    if (this.resyncs.length > 100_000) this.prune(now);
  }

  report(store: RootStore, now = Date.now()): RootStatusReport {
    this.prune(now);
    const trees = new Set(this.plan.trees);
    const upHere = new Map<number, OriginState[]>();
    for (const name of store.originNames) {
      const st = store.origin(name)!;
      // A cluster's origins at a central root are reported per cluster, not per tree.
      if (!st.up || st.cluster !== null) continue;
      const tree = this.plan.treeOf.get(name) ?? -1;
      trees.add(tree);
      let list = upHere.get(tree);
      if (list === undefined) upHere.set(tree, (list = []));
      list.push(st);
    }
    const out: TreeStatus[] = [];
    for (const tree of [...trees].sort((a, b) => a - b)) {
      const own = this.plan.trees.includes(tree);
      const members = upHere.get(tree) ?? [];
      const upNames = new Set(members.map((m) => m.name));
      const all = this.plan.nodesOfTree.get(tree) ?? [];
      const away: { node: string; parent: string; planned: string }[] = [];
      let failovers = 0;
      for (const st of members) {
        const info = st.nodeStatus();
        if (info.parent !== null && info.parent !== (this.plan.plannedParent.get(st.name) ?? info.planned)) {
          away.push({ node: st.name, parent: info.parent, planned: this.plan.plannedParent.get(st.name) ?? info.planned ?? "" });
        }
        failovers += info.failoversLastHour;
      }
      out.push({
        tree,
        planned_root: this.plan.rootOfTree.get(tree) ?? "",
        own,
        nodes: all.length,
        up: members.length,
        down_nodes: own ? all.filter((n) => !upNames.has(n)) : [],
        guest_nodes: own ? [] : [...upNames].sort(),
        away_nodes: away.sort((a, b) => (a.node < b.node ? -1 : 1)),
        failovers_1h: failovers,
        resyncs_1h: this.resyncs.filter((r) => r.tree === tree).length,
      });
    }
    return { root: this.plan.root, time: new Date(now).toISOString(), trees: out };
  }

  private prune(now: number): void {
    const since = now - HOUR_MS;
    let k = 0;
    while (k < this.resyncs.length && this.resyncs[k]!.at < since) k++;
    if (k > 0) this.resyncs = this.resyncs.slice(k);
  }
}

/** /api/v1/nodes: every node this root has state for, with up and the times of its latest frame. */
export function nodesReport(store: RootStore): { node: string; up: boolean; last_seen_ms: number; last_sample_ms: number; series: number }[] {
  const out = [];
  for (const name of store.originNames) {
    const st = store.origin(name)!;
    out.push({ node: name, up: st.up, last_seen_ms: st.lastSeenMs, last_sample_ms: st.lastSampleMs, series: st.up ? st.seriesCount : 0 });
  }
  return out;
}
