/**
 * Values on the wire as packed decimals: m · 10^e in one integer, `zigzag(m) · 32 + (e + 16)`,
 * e in [-16, 15]. A changed value of a typical metric packs into 1-3 msgpack bytes instead of the 9
 * of a float64 (TOOLCHAIN.md: quantised integers halve the payload before lz4 sees it).
 * Both ends decode with the same arithmetic, so the encoder knows exactly what the root will hold.
 */

const POW10 = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));
/** |m| stays below this so zigzag(m)·32 + 31 is a safe integer. */
const MAX_MANTISSA = 2 ** 47;
const E_MIN = -16;
const E_MAX = 15;

export function decodeDecimal(packed: number): number {
  const e = (packed % 32) + E_MIN;
  const z = Math.floor(packed / 32);
  const m = z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  return e >= 0 ? m * POW10[e]! : m / POW10[-e]!;
}

function pack(m: number, e: number): number {
  const z = m >= 0 ? 2 * m : -2 * m - 1;
  return z * 32 + (e - E_MIN);
}

/** The shortest packed decimal that decodes to exactly `v`, or -1 when there is none (NaN, ±Inf, -0, 1/3…). */
export function exactDecimal(v: number): number {
  if (!Number.isFinite(v) || Object.is(v, -0)) return -1;
  if (Number.isInteger(v)) {
    let m = v;
    let e = 0;
    while (e < E_MAX && m !== 0 && m % 10 === 0) {
      m /= 10;
      e++;
    }
    if (Math.abs(m) >= MAX_MANTISSA) return -1;
    const p = pack(m, e);
    return decodeDecimal(p) === v ? p : -1;
  }
  for (let k = 1; k <= -E_MIN; k++) {
    const m = Math.round(v * POW10[k]!);
    if (Math.abs(m) >= MAX_MANTISSA) return -1;
    if (m / POW10[k]! === v) return pack(m, -k);
  }
  return -1;
}

/**
 * A packed decimal within `tolerance` of `v` on the coarsest power-of-ten grid that keeps it so
 * (the rounding error is at most half a step). -1 when none fits: the caller sends it exactly.
 */
export function roundedDecimal(v: number, tolerance: number): number {
  if (!Number.isFinite(v) || !(tolerance > 0)) return exactDecimal(v);
  let e = Math.floor(Math.log10(tolerance));
  if (e > E_MAX) e = E_MAX;
  if (e < E_MIN) return exactDecimal(v);
  const m = e >= 0 ? Math.round(v / POW10[e]!) : Math.round(v * POW10[-e]!);
  if (Math.abs(m) >= MAX_MANTISSA) return exactDecimal(v);
  const p = pack(m, e);
  return Math.abs(decodeDecimal(p) - v) <= tolerance ? p : exactDecimal(v);
}
