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
  const e = exponentOf(packed);
  const m = mantissaOf(packed);
  return e >= 0 ? m * POW10[e]! : m / POW10[-e]!;
}

function exponentOf(packed: number): number {
  return (packed % 32) + E_MIN;
}

function mantissaOf(packed: number): number {
  const z = Math.floor(packed / 32);
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/**
 * What both ends compute for a DELTA value: the held value plus the packed difference, snapped to
 * the difference's decimal places. (Without the snap, 100011.95 + 0.42 is 100012.37000000001 and
 * every fractional counter would travel as a raw float64: measured 30 of 48 changed values per
 * frame raw, 8.3 B per changed series.)
 */
export function addDecimal(held: number, packed: number): number {
  const sum = held + decodeDecimal(packed);
  const e = exponentOf(packed);
  if (e >= 0) return sum;
  const scaled = Math.round(sum * POW10[-e]!);
  return Number.isSafeInteger(scaled) ? scaled / POW10[-e]! : sum;
}

/**
 * The packed difference that takes `held` exactly to `v` under addDecimal, computed on the
 * decimal mantissas (so no float subtraction error creeps in), or -1 when there is none.
 */
export function exactDifference(held: number, v: number): number {
  const ph = exactDecimal(held);
  const pv = exactDecimal(v);
  if (ph >= 0 && pv >= 0) {
    const eh = exponentOf(ph);
    const ev = exponentOf(pv);
    const e = Math.min(eh, ev);
    const m = mantissaOf(pv) * POW10[ev - e]! - mantissaOf(ph) * POW10[eh - e]!;
    if (Number.isSafeInteger(m) && Math.abs(m) < MAX_MANTISSA) {
      let mm = m;
      let ee = e;
      while (ee < E_MAX && mm !== 0 && mm % 10 === 0) {
        mm /= 10;
        ee++;
      }
      const p = pack(mm, ee);
      if (addDecimal(held, p) === v) return p;
    }
  }
  const p = exactDecimal(v - held);
  return p >= 0 && addDecimal(held, p) === v ? p : -1;
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
