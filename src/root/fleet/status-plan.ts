import type { Topology } from "../../topology/topology-file.js";
import { rootRecord } from "../../topology/topology-lookup.js";
import { expandHostlist } from "../../topology/hostlist.js";
import type { StatusPlan } from "./root-status.js";

/** Labels for the nodes of a hostlist (the root's `events.nodeLabels`). */
export interface NodeLabelRule {
  readonly nodes: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The topology as the root's status page needs it. */
export function statusPlan(t: Topology, name: string, source: string, nodeLabels: readonly NodeLabelRule[] = []): StatusPlan {
  const rec = rootRecord(t, name, source);
  const treeOf = new Map<string, number>();
  const plannedParent = new Map<string, string>();
  const nodesOfTree = new Map<number, string[]>();
  const switchOf = new Map<string, string>();
  for (const [n, r] of t.nodes) {
    // A central topology's "nodes" are clusters' roots: the clusters section reports them.
    if (r.cluster !== undefined) continue;
    treeOf.set(n, r.tree);
    if (r.switch !== undefined) switchOf.set(n, r.switch);
    plannedParent.set(n, r.parent);
    let list = nodesOfTree.get(r.tree);
    if (list === undefined) nodesOfTree.set(r.tree, (list = []));
    list.push(n);
  }
  const rootOfTree = new Map<number, string>();
  for (const r of t.roots) for (const tree of r.trees) rootOfTree.set(tree, r.name);
  const labelsOf = new Map<string, Record<string, string>>();
  for (const { nodes, labels } of nodeLabels) {
    for (const n of expandHostlist(nodes, "events.nodeLabels[].nodes")) labelsOf.set(n, { ...labelsOf.get(n), ...labels });
  }
  return { root: name, trees: rec.trees, treeOf, plannedParent, nodesOfTree, rootOfTree, switchOf, labelsOf };
}
