import type { Topology } from "../../topology/topology-file.js";
import { completeTreeDepth } from "./tree-slots.js";

/**
 * Checks a topology for everything that would break the trees at run time. Returns one line per
 * problem, empty when the topology is sound. Each check is independent, so one bad record does not
 * hide the others.
 */
export function checkTopology(t: Topology): string[] {
  const problems: string[] = [];
  const { trees, fanout } = t.params;
  const roots = new Map(t.roots.map((r) => [r.name, r]));
  const isKnown = (name: string): boolean => t.nodes.has(name) || roots.has(name);

  // Roots: no duplicates, not compute nodes, every tree terminated exactly once.
  const rootOfTree = new Map<number, string>();
  const seenRoots = new Set<string>();
  for (const r of t.roots) {
    if (seenRoots.has(r.name)) problems.push(`root ${r.name}: listed twice`);
    seenRoots.add(r.name);
    if (t.nodes.has(r.name)) problems.push(`root ${r.name}: also listed as a compute node`);
    for (const tree of r.trees) {
      if (tree >= trees) problems.push(`root ${r.name}: tree ${tree} does not exist (params.trees = ${trees})`);
      const other = rootOfTree.get(tree);
      if (other !== undefined) problems.push(`tree ${tree}: terminated by both ${other} and ${r.name}`);
      else rootOfTree.set(tree, r.name);
    }
  }
  for (let tree = 0; tree < trees; tree++) {
    if (!rootOfTree.has(tree)) problems.push(`tree ${tree}: no root terminates it`);
  }

  // Addresses: every gRPC and HTTP listen address is used once.
  const owners = new Map<string, string>();
  const claim = (addr: string, who: string): void => {
    const other = owners.get(addr);
    if (other !== undefined) problems.push(`address ${addr}: used by both ${other} and ${who}`);
    else owners.set(addr, who);
  };
  for (const r of t.roots) {
    claim(r.address, `root ${r.name}`);
    claim(r.http, `root ${r.name} (http)`);
  }
  for (const [name, n] of t.nodes) claim(n.address, `node ${name}`);

  // Per node: names resolve, parent and children agree, fan-in, tree membership.
  const treeSize = new Array<number>(trees).fill(0);
  /** Compute nodes only: dedicated relays are dealt round-robin and may differ by more. */
  const computeSize = new Array<number>(trees).fill(0);
  for (const [name, n] of t.nodes) {
    if (n.tree >= trees) {
      problems.push(`node ${name}: tree ${n.tree} does not exist (params.trees = ${trees})`);
    } else {
      treeSize[n.tree]!++;
      if (n.relay !== true) computeSize[n.tree]!++;
    }
    if (n.parent === name) problems.push(`node ${name}: is its own parent`);
    const parentNode = t.nodes.get(n.parent);
    const parentRoot = roots.get(n.parent);
    if (parentNode !== undefined) {
      if (!parentNode.children.includes(name)) problems.push(`node ${name}: not listed in the children of its parent ${n.parent}`);
      if (parentNode.tree !== n.tree) problems.push(`node ${name}: in tree ${n.tree} but its parent ${n.parent} is in tree ${parentNode.tree}`);
    } else if (parentRoot !== undefined) {
      if (!parentRoot.children.includes(name)) problems.push(`node ${name}: not listed in the children of its root ${n.parent}`);
      if (!parentRoot.trees.includes(n.tree)) problems.push(`node ${name}: in tree ${n.tree} but its root ${n.parent} does not terminate that tree`);
    } else {
      problems.push(`node ${name}: parent ${n.parent} is unknown`);
    }
    if (n.children.length > fanout) problems.push(`node ${name}: fan-in ${n.children.length} over the limit ${fanout}`);
    for (const c of n.children) {
      const child = t.nodes.get(c);
      if (child === undefined) problems.push(`node ${name}: child ${c} is unknown`);
      else if (child.parent !== name) problems.push(`node ${name}: lists child ${c} whose parent is ${child.parent}`);
    }
    // Only a top-level node under the single root of a cluster has nothing to fall back to.
    if (n.fallbacks.length === 0 && (parentNode !== undefined || t.roots.length > 1)) {
      problems.push(`node ${name}: has no fallback`);
    }
    for (const f of n.fallbacks) {
      if (!isKnown(f)) problems.push(`node ${name}: fallback ${f} is unknown`);
      else if (f === name) problems.push(`node ${name}: is its own fallback`);
    }
  }
  for (const r of t.roots) {
    for (const c of r.children) {
      const child = t.nodes.get(c);
      if (child === undefined) problems.push(`root ${r.name}: child ${c} is unknown`);
      else if (child.parent !== r.name) problems.push(`root ${r.name}: lists child ${c} whose parent is ${child.parent}`);
    }
  }

  // Reachability, depth and descendants from one depth-first numbering of the trees as the
  // parent pointers draw them: X is an ancestor of F when F's number falls inside X's interval.
  // (Walking each fallback's ancestors instead costs n·depth², minutes for a deep tree.)
  const { depthOf, enter, leave } = numberTrees(t);
  for (const name of t.nodes.keys()) {
    if (enter.has(name)) continue;
    // Not reached from a root: an unknown parent (reported above) or a cycle.
    const onPath = new Set<string>();
    for (let cur: string | undefined = name; cur !== undefined && !enter.has(cur); cur = t.nodes.get(cur)?.parent) {
      if (onPath.has(cur)) {
        problems.push(`node ${name}: parent chain has a cycle through ${cur}`);
        break;
      }
      onPath.add(cur);
    }
  }
  for (const [name, n] of t.nodes) {
    const lo = enter.get(name);
    if (lo === undefined) continue;
    const hi = leave.get(name)!;
    for (const f of n.fallbacks) {
      const at = enter.get(f);
      if (f !== name && at !== undefined && at > lo && at < hi) problems.push(`node ${name}: fallback ${f} is its own descendant`);
    }
  }

  // Balance and depth: trees' compute nodes differ by at most one; no tree deeper than a complete one.
  if (trees > 0) {
    const min = Math.min(...computeSize);
    const max = Math.max(...computeSize);
    if (max - min > 1) problems.push(`trees unbalanced: sizes from ${min} to ${max} (${computeSize.join(" ")})`);
  }
  const treeDepth = new Array<number>(trees).fill(0);
  for (const [name, n] of t.nodes) {
    const d = depthOf.get(name) ?? 0;
    if (n.tree < trees && d > treeDepth[n.tree]!) treeDepth[n.tree] = d;
  }
  for (let tree = 0; tree < trees; tree++) {
    const limit = completeTreeDepth(treeSize[tree]!, fanout);
    if (treeDepth[tree]! > limit) {
      problems.push(`tree ${tree}: depth ${treeDepth[tree]} exceeds ${limit}, the depth of a complete tree of ${treeSize[tree]} nodes`);
    }
  }
  return problems;
}

/** Depth-first numbering from the roots along parent pointers (iterative: trees can be deep). */
function numberTrees(t: Topology): { depthOf: Map<string, number>; enter: Map<string, number>; leave: Map<string, number> } {
  const kids = new Map<string, string[]>();
  for (const [name, n] of t.nodes) {
    let list = kids.get(n.parent);
    if (list === undefined) kids.set(n.parent, (list = []));
    list.push(name);
  }
  const depthOf = new Map<string, number>();
  const enter = new Map<string, number>();
  const leave = new Map<string, number>();
  let clock = 0;
  for (const root of t.roots) {
    // Stack entries: a name to enter, or a name (negative marker) to leave.
    const stack: [string, number, boolean][] = (kids.get(root.name) ?? []).map((c) => [c, 1, false]);
    while (stack.length > 0) {
      const [name, depth, leaving] = stack.pop()!;
      if (leaving) {
        leave.set(name, clock++);
        continue;
      }
      if (enter.has(name)) continue;
      enter.set(name, clock++);
      depthOf.set(name, depth);
      stack.push([name, depth, true]);
      for (const c of kids.get(name) ?? []) stack.push([c, depth + 1, false]);
    }
  }
  return { depthOf, enter, leave };
}
