import type { SwitchLayout } from "./switch-layout.js";
import type { Topology } from "../../topology/topology-file.js";
import { firstChildSlot, parentSlot, preorderSlots } from "./tree-slots.js";

/**
 * Where each node sits: which tree and which slot of it. Placement is the one decision of the
 * generator; parents, children and fallbacks follow from it.
 */
export interface Placement {
  /** slotNames[tree][slot] is the node at that slot; every tree is filled from slot 0 up. */
  readonly slotNames: readonly (readonly string[])[];
}

/** Balanced shares: sizes differ by at most one, the larger shares first. */
export function treeSizes(nodeCount: number, trees: number): number[] {
  const q = Math.floor(nodeCount / trees);
  const r = nodeCount % trees;
  return Array.from({ length: trees }, (_, t) => q + (t < r ? 1 : 0));
}

/**
 * Orders nodes so that those of one leaf switch are adjacent, leaves in switch-tree order,
 * keeping the node list's order inside a switch; nodes on no known switch come last.
 */
export function orderBySwitch(nodes: readonly string[], layout: SwitchLayout | null): string[] {
  if (layout === null) return [...nodes];
  const rank = new Map<string, number>();
  layout.leafOrder.forEach((sw, k) => rank.set(sw, k));
  const unknown = layout.leafOrder.length;
  const keyed = nodes.map((name, k) => {
    const sw = layout.switchOf.get(name);
    return { name, k, r: sw === undefined ? unknown : (rank.get(sw) ?? unknown) };
  });
  keyed.sort((a, b) => a.r - b.r || a.k - b.k);
  return keyed.map((e) => e.name);
}

/** A fresh placement: contiguous shares of the (switch-ordered) list, each laid out in pre-order. */
export function freshPlacement(nodes: readonly string[], trees: number, fanout: number, layout: SwitchLayout | null): Placement {
  const ordered = orderBySwitch(nodes, layout);
  const sizes = treeSizes(ordered.length, trees);
  const slotNames: string[][] = [];
  let next = 0;
  for (let t = 0; t < trees; t++) {
    const size = sizes[t]!;
    const names = new Array<string>(size);
    const order = preorderSlots(size, fanout);
    for (let k = 0; k < size; k++) names[order[k]!] = ordered[next++]!;
    slotNames.push(names);
  }
  return { slotNames };
}

/**
 * A placement that moves as few nodes as it can from `previous`: surviving nodes keep their tree
 * and slot; the slots of removed nodes are refilled and new nodes fill free slots; trees that would
 * grow unbalanced give up their last slots. Removing or adding k nodes changes the parent of at
 * most about 3k others (the node that refills a slot, and the children of that slot).
 */
export function stablePlacement(
  nodes: readonly string[],
  trees: number,
  fanout: number,
  layout: SwitchLayout | null,
  previous: Topology,
): Placement {
  const survivorsPerTree = new Array<number>(trees).fill(0);
  for (const name of nodes) {
    const old = previous.nodes.get(name);
    if (old !== undefined && old.tree < trees) survivorsPerTree[old.tree]!++;
  }
  // The larger shares go to the trees that keep the most nodes, so fewer are evicted.
  const byKept = Array.from({ length: trees }, (_, t) => t).sort(
    (a, b) => survivorsPerTree[b]! - survivorsPerTree[a]! || a - b,
  );
  const shares = treeSizes(nodes.length, trees);
  const target = new Array<number>(trees);
  byKept.forEach((t, k) => (target[t] = shares[k]!));

  const slotNames: (string | undefined)[][] = target.map((size) => new Array<string | undefined>(size));
  const pool: string[] = [];
  for (const name of orderBySwitch(nodes, layout)) {
    const old = previous.nodes.get(name);
    if (old !== undefined && old.tree < trees && old.slot < target[old.tree]! && slotNames[old.tree]![old.slot] === undefined) {
      slotNames[old.tree]![old.slot] = name;
    } else {
      pool.push(name);
    }
  }

  // Fill holes from the top of each tree down, so a hole's parent is already placed and a node on
  // the parent's switch can be preferred.
  const bySwitch = new Map<string, string[]>();
  if (layout !== null) {
    for (let k = pool.length - 1; k >= 0; k--) {
      const sw = layout.switchOf.get(pool[k]!);
      if (sw === undefined) continue;
      let list = bySwitch.get(sw);
      if (list === undefined) bySwitch.set(sw, (list = []));
      list.push(pool[k]!);
    }
  }
  const taken = new Set<string>();
  let cursor = 0;
  const takeAny = (): string => {
    while (taken.has(pool[cursor]!)) cursor++;
    return pool[cursor++]!;
  };
  for (let t = 0; t < trees; t++) {
    const names = slotNames[t]!;
    for (let s = 0; s < names.length; s++) {
      if (names[s] !== undefined) continue;
      let chosen: string | undefined;
      if (layout !== null) {
        // The parent's switch; under a root host, that of the slot's first child.
        const p = parentSlot(s, fanout);
        const near = p >= 0 ? names[p] : names[firstChildSlot(s, fanout)];
        const list = near === undefined ? undefined : bySwitch.get(layout.switchOf.get(near) ?? "");
        while (list !== undefined && list.length > 0 && chosen === undefined) {
          const candidate = list.pop()!;
          if (!taken.has(candidate)) chosen = candidate;
        }
      }
      chosen ??= takeAny();
      taken.add(chosen);
      names[s] = chosen;
    }
  }
  return { slotNames: slotNames as string[][] };
}
