/**
 * Arithmetic of a complete tree of fan-out F laid out in heap order under a root host.
 * The root host is the virtual slot -1; slots 0..F-1 are its children; the children of slot s
 * are slots (s+1)·F … (s+1)·F+F-1. A tree of n nodes occupies slots 0..n-1, so it is complete.
 */

/** The parent slot of `slot`, or -1 when its parent is the root host. */
export function parentSlot(slot: number, fanout: number): number {
  return Math.floor(slot / fanout) - 1;
}

/** The first child slot of `slot` (the others follow it, up to fanout of them). */
export function firstChildSlot(slot: number, fanout: number): number {
  return (slot + 1) * fanout;
}

/** Hops from `slot` up to the root host (a top-level node is at depth 1). */
export function slotDepth(slot: number, fanout: number): number {
  let depth = 0;
  for (let s = slot; s >= 0; s = parentSlot(s, fanout)) depth++;
  return depth;
}

/** The depth of a complete tree of `size` nodes: that of its last slot (0 for an empty tree). */
export function completeTreeDepth(size: number, fanout: number): number {
  return size === 0 ? 0 : slotDepth(size - 1, fanout);
}

/**
 * Slots 0..size-1 in depth-first pre-order. Handing out nodes in this order keeps every subtree
 * a contiguous run of the node list, so neighbours in the list (usually the same rack) end up as
 * parent and child.
 */
export function preorderSlots(size: number, fanout: number): Int32Array {
  const out = new Int32Array(size);
  const stack: number[] = [];
  for (let s = Math.min(fanout, size) - 1; s >= 0; s--) stack.push(s);
  let k = 0;
  while (stack.length > 0) {
    const s = stack.pop()!;
    out[k++] = s;
    const first = firstChildSlot(s, fanout);
    for (let c = Math.min(first + fanout, size) - 1; c >= first; c--) stack.push(c);
  }
  return out;
}
