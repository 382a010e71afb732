import { BanyanError, Code } from "../core/errors.js";


/**
 * The body of one frame, columnar so that msgpack writes small integers and lz4 finds runs:
 *
 *   [1, strings, defs, gone, ids, vals, rawIds, rawVals]           (KEY, DELTA)
 *   [1, strings, defs, gone, ids, vals, rawIds, rawVals, live]     (VALUES)
 *
 * - strings: appended to the origin's string table (a KEY frame starts the table afresh)
 * - defs:    flat ints, per new series: id, name, type, family, help, nLabels, (label, value)×n,
 *            names and texts as indices into the string table
 * - gone:    ids of series that ended (DELTA only)
 * - ids:     ascending series ids, delta-coded (first absolute, then gaps)
 * - vals:    packed decimals (decimal.ts): absolute in a KEY frame, added to the held value in a DELTA
 * - rawIds:  ascending ids, delta-coded, whose value travels as an absolute float64 (NaN, ±Inf, -0,
 *            a counter reset, a value with no short decimal)
 * - rawVals: those float64s, little-endian, 8 bytes each (msgpack would turn -0 into 0)
 * - live:    (VALUES only) how many series the origin has after this frame: a root whose count
 *            differs lost track and asks for a KEY frame
 */
export interface Payload {
  readonly strings: readonly string[];
  readonly defs: readonly number[];
  readonly gone: readonly number[];
  readonly ids: readonly number[];
  readonly vals: readonly number[];
  readonly rawIds: readonly number[];
  readonly rawVals: Uint8Array;
  readonly live?: number;
}

export const PAYLOAD_FORMAT = 1;

/**
 * How a payload applies at the root:
 * - key:    the whole state afresh (string table, every definition, every value, absolute);
 * - values: every series' absolute value, plus the definitions and gone series since the last
 *           frame, on top of the same epoch's unbroken stream (the periodic keyframe);
 * - delta:  what changed: new definitions, gone series, values added to the held ones.
 */
export type FrameMode = "key" | "values" | "delta";

/** What a decoder accepts from one origin; anything past it is a protocol error, not a crash. */
export interface SeriesLimits {
  /** Highest series id + 1 an origin may use. */
  readonly maxSeriesPerOrigin: number;
  readonly maxLabels: number;
  /** Longest metric name, label name, label value or help text, in characters. */
  readonly maxStringLength: number;
  /** Most strings an origin's table may hold. */
  readonly maxStrings: number;
  /** Most characters an origin's table may hold, all strings together (what its memory at a root is bounded by). */
  readonly maxStringChars: number;
}

export const DEFAULT_SERIES_LIMITS: SeriesLimits = Object.freeze({
  maxSeriesPerOrigin: 100_000,
  maxLabels: 32,
  maxStringLength: 4096,
  maxStrings: 400_000,
  maxStringChars: 8_000_000,
});

export function payloadToArray(p: Payload): unknown[] {
  const a: unknown[] = [PAYLOAD_FORMAT, p.strings, p.defs, p.gone, p.ids, p.vals, p.rawIds, p.rawVals];
  if (p.live !== undefined) a.push(p.live);
  return a;
}

function bad(why: string): never {
  throw new BanyanError(Code.Protocol, `payload: ${why}`);
}

function intArray(v: unknown, what: string, max: number): number[] {
  if (!Array.isArray(v)) bad(`${what} is not an array`);
  for (let k = 0; k < v.length; k++) {
    const x = v[k];
    if (typeof x !== "number" || !Number.isSafeInteger(x) || x < 0 || x > max) bad(`${what}[${k}] is not an integer in 0..${max}`);
  }
  return v as number[];
}

/** Checks the shape of a decoded msgpack value; throws a Protocol BanyanError naming the bad field. */
export function payloadFromArray(raw: unknown, limits: SeriesLimits): Payload {
  if (!Array.isArray(raw) || (raw.length !== 8 && raw.length !== 9)) bad("not an 8- or 9-element array");
  if (raw[0] !== PAYLOAD_FORMAT) bad(`unknown format ${JSON.stringify(raw[0])}`);
  const strings = raw[1];
  if (!Array.isArray(strings)) bad("strings is not an array");
  if (strings.length > limits.maxStrings) bad(`${strings.length} strings, over the limit ${limits.maxStrings}`);
  for (let k = 0; k < strings.length; k++) {
    const s = strings[k];
    if (typeof s !== "string") bad(`strings[${k}] is not a string`);
    if (s.length > limits.maxStringLength) bad(`strings[${k}] is ${s.length} characters, over the limit ${limits.maxStringLength}`);
  }
  const maxId = limits.maxSeriesPerOrigin - 1;
  const defs = intArray(raw[2], "defs", Number.MAX_SAFE_INTEGER);
  const gone = intArray(raw[3], "gone", maxId);
  const ids = intArray(raw[4], "ids", maxId);
  const vals = intArray(raw[5], "vals", Number.MAX_SAFE_INTEGER);
  const rawIds = intArray(raw[6], "rawIds", maxId);
  const rawVals = raw[7];
  if (!(rawVals instanceof Uint8Array)) bad("rawVals is not binary");
  if (ids.length !== vals.length) bad(`${ids.length} ids but ${vals.length} values`);
  if (rawIds.length * 8 !== rawVals.length) bad(`${rawIds.length} raw ids but ${rawVals.length} raw bytes`);
  const p = { strings: strings as string[], defs, gone, ids, vals, rawIds, rawVals };
  if (raw.length === 8) return p;
  const live = raw[8];
  if (typeof live !== "number" || !Number.isSafeInteger(live) || live < 0 || live > limits.maxSeriesPerOrigin) bad(`live is not an integer in 0..${limits.maxSeriesPerOrigin}`);
  return { ...p, live };
}


/** How many series a payload defines (its `defs` walked, not decoded): what a quota checks before applying. */
export function definedCount(defs: readonly number[]): number {
  let n = 0;
  for (let k = 0; k + 5 < defs.length; k += 6 + 2 * (defs[k + 5]! >>> 0)) n++;
  return n;
}
