/** The typed arrays Banyan keeps per series and per sample (values, flags, ids). */
export type GrowableArray = Float64Array | Uint32Array | Int32Array | Uint8Array;

/** A length of at least `min`, doubling from `current` (and from `floor` when smaller). */
export function doubledLength(current: number, min: number, floor = 64): number {
  let n = Math.max(floor, current);
  while (n < min) n *= 2;
  return n;
}

/** `a` if it holds `min` elements, else a copy doubled to fit them (zeros past the old end). */
export function grownTo<T extends GrowableArray>(a: T, min: number, floor = 64): T {
  if (a.length >= min) return a;
  const b = new (a.constructor as new (n: number) => T)(doubledLength(a.length, min, floor));
  b.set(a);
  return b;
}
