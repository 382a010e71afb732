import type { Topology } from "./topology-file.js";
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
  for (const [name, n] of t.nodes) {
    if (n.tree >= trees) {
      problems.push(`node ${name}: tree ${n.tree} does not exist (params.trees = ${trees})`);
    } else {
      treeSize[n.tree]!++;
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
    if (n.fallbacks.length === 0) problems.push(`node ${name}: has no fallback`);
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

  // Reachability and cycles: walking parents from any node reaches a root within the node count.
  const depthOf = new Map<string, number>();
  for (const name of t.nodes.keys()) {
    const path: string[] = [];
    const onPath = new Set<string>();
    let cur = name;
    let depth: number | undefined;
    while (true) {
      const known = depthOf.get(cur);
      if (known !== undefined) {
        depth = known;
        break;
      }
      if (roots.has(cur)) {
        depth = 0;
        break;
      }
      const rec = t.nodes.get(cur);
      if (rec === undefined) break; // unknown parent, already reported
      if (onPath.has(cur)) {
        problems.push(`node ${name}: parent chain has a cycle through ${cur}`);
        break;
      }
      onPath.add(cur);
      path.push(cur);
      cur = rec.parent;
    }
    if (depth === undefined) {
      for (const p of path) depthOf.set(p, -1);
      continue;
    }
    for (let k = path.length - 1; k >= 0; k--) {
      depth = depth < 0 ? -1 : depth + 1;
      depthOf.set(path[k]!, depth);
    }
  }

  // Fallbacks never point into the node's own subtree: walk each fallback's parent chain.
  for (const [name, n] of t.nodes) {
    for (const f of n.fallbacks) {
      if (f === name || !t.nodes.has(f)) continue;
      let cur: string | undefined = f;
      for (let hops = 0; cur !== undefined && hops <= t.nodes.size; hops++) {
        const rec = t.nodes.get(cur);
        if (rec === undefined) break;
        if (rec.parent === name) {
          problems.push(`node ${name}: fallback ${f} is its own descendant`);
          break;
        }
        cur = rec.parent;
      }
    }
  }

  // Balance and depth: tree sizes differ by at most one; no tree deeper than a complete one.
  if (trees > 0) {
    const min = Math.min(...treeSize);
    const max = Math.max(...treeSize);
    if (max - min > 1) problems.push(`trees unbalanced: sizes from ${min} to ${max} (${treeSize.join(" ")})`);
  }
  const treeDepth = new Array<number>(trees).fill(0);
  for (const [name, n] of t.nodes) {
    const d = depthOf.get(name) ?? -1;
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
