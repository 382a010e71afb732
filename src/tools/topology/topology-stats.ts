import type { Topology } from "../../topology/topology-file.js";

/** What `banyan topology show` reports per tree and in total. */
export interface TreeStats {
  readonly tree: number;
  readonly root: string;
  readonly nodes: number;
  /** Hops from the deepest node to the root host. */
  readonly depth: number;
  /** Most children of any node or of the root host in this tree. */
  readonly maxFanIn: number;
  /** Parent-child edges between two compute nodes on different leaf switches (null: no layout). */
  readonly crossSwitchEdges: number | null;
}

export interface TopologyStats {
  readonly trees: readonly TreeStats[];
  readonly totals: {
    readonly nodes: number;
    readonly roots: number;
    readonly trees: number;
    readonly fanout: number;
    readonly maxDepth: number;
    readonly maxFanIn: number;
    readonly crossSwitchEdges: number | null;
  };
}

export function topologyStats(t: Topology): TopologyStats {
  const trees = t.params.trees;
  const hasSwitches = t.params.switches !== null;
  const rootName = new Array<string>(trees).fill("-");
  for (const r of t.roots) for (const tree of r.trees) if (tree < trees) rootName[tree] = r.name;
  const size = new Array<number>(trees).fill(0);
  const depth = new Array<number>(trees).fill(0);
  const fanIn = new Array<number>(trees).fill(0);
  const cross = new Array<number>(trees).fill(0);
  const rootChildren = new Map<string, number>();

  const depthOf = new Map<string, number>();
  const depthFor = (name: string): number => {
    // Iterative, memoised walk up the parent chain; a broken chain counts as depth 0 past the break.
    const stack: string[] = [];
    let cur: string | undefined = name;
    let base = 0;
    while (cur !== undefined) {
      const known = depthOf.get(cur);
      if (known !== undefined) {
        base = known;
        break;
      }
      const rec = t.nodes.get(cur);
      if (rec === undefined || stack.length > t.nodes.size) break;
      stack.push(cur);
      cur = rec.parent;
    }
    for (let k = stack.length - 1; k >= 0; k--) depthOf.set(stack[k]!, ++base);
    return depthOf.get(name) ?? 0;
  };

  for (const [name, n] of t.nodes) {
    if (n.tree >= trees) continue;
    size[n.tree]!++;
    depth[n.tree] = Math.max(depth[n.tree]!, depthFor(name));
    fanIn[n.tree] = Math.max(fanIn[n.tree]!, n.children.length);
    const parent = t.nodes.get(n.parent);
    if (parent === undefined) {
      const key = `${n.parent}/${n.tree}`;
      const c = (rootChildren.get(key) ?? 0) + 1;
      rootChildren.set(key, c);
      fanIn[n.tree] = Math.max(fanIn[n.tree]!, c);
    } else if (hasSwitches && parent.switch !== n.switch) {
      cross[n.tree]!++;
    }
  }

  const perTree: TreeStats[] = Array.from({ length: trees }, (_, tree) => ({
    tree,
    root: rootName[tree]!,
    nodes: size[tree]!,
    depth: depth[tree]!,
    maxFanIn: fanIn[tree]!,
    crossSwitchEdges: hasSwitches ? cross[tree]! : null,
  }));
  return {
    trees: perTree,
    totals: {
      nodes: t.nodes.size,
      roots: t.roots.length,
      trees,
      fanout: t.params.fanout,
      maxDepth: Math.max(0, ...depth),
      maxFanIn: Math.max(0, ...fanIn),
      crossSwitchEdges: hasSwitches ? cross.reduce((a, b) => a + b, 0) : null,
    },
  };
}

/** How two topologies differ: what an administrator wants to know before rolling one out. */
export interface TopologyDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Nodes present in both whose parent changed. */
  readonly moved: readonly string[];
  /** Nodes present in both that changed tree. */
  readonly changedTree: readonly string[];
}

export function diffTopologies(before: Topology, after: Topology): TopologyDiff {
  const added: string[] = [];
  const removed: string[] = [];
  const moved: string[] = [];
  const changedTree: string[] = [];
  for (const [name, n] of after.nodes) {
    const old = before.nodes.get(name);
    if (old === undefined) {
      added.push(name);
      continue;
    }
    if (old.parent !== n.parent) moved.push(name);
    if (old.tree !== n.tree) changedTree.push(name);
  }
  for (const name of before.nodes.keys()) if (!after.nodes.has(name)) removed.push(name);
  return { added, removed, moved, changedTree };
}
