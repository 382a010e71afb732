import { BanyanError, Code } from "../core/errors.js";
import { addDecimal, decodeDecimal } from "./decimal.js";
import { DEFAULT_SERIES_LIMITS, type FrameMode, type Payload, type SeriesLimits } from "./payload.js";
import { SERIES_TYPE_MAX, type SeriesDef, type SeriesType, isLabelName, isMetricName } from "./series-def.js";

/** What one frame changed, for the root's caches: ids whose value, or definition, changed. */
export interface AppliedFrame {
  readonly changed: readonly number[];
  readonly defined: readonly number[];
  readonly gone: readonly number[];
}

/**
 * The root's copy of one origin in one epoch: the string table, the series definitions and the
 * current values. A frame is checked whole before any of it is applied, so a bad frame leaves the
 * state as it was (the caller then asks the origin for a keyframe).
 */
export class DeltaDecoder {
  private strings: string[] = [];
  private defs: (SeriesDef | undefined)[] = [];
  private vals = new Float64Array(64);
  private live = 0;

  constructor(private readonly limits: SeriesLimits = DEFAULT_SERIES_LIMITS) {}

  get size(): number {
    return this.live;
  }

  /** Highest id + 1 that has ever been defined (iterate 0..capacity and skip undefined). */
  get capacity(): number {
    return this.defs.length;
  }

  def(id: number): SeriesDef | undefined {
    return this.defs[id];
  }

  value(id: number): number {
    return this.vals[id]!;
  }

  /**
   * Applies a KEY frame (the state starts afresh), a VALUES frame (every series' absolute value on
   * top of the tables as they are) or a DELTA frame. Throws a Protocol error on bad content.
   */
  apply(p: Payload, mode: FrameMode): AppliedFrame {
    const key = mode === "key";
    const absolute = mode !== "delta";
    // Copy-on-write: most DELTA frames carry values only and reuse the tables as they are.
    const strings = key ? [...p.strings] : p.strings.length > 0 ? this.strings.concat(p.strings) : this.strings;
    if (strings.length > this.limits.maxStrings) this.bad(`string table of ${strings.length} over the limit ${this.limits.maxStrings}`);
    const defs: (SeriesDef | undefined)[] = key ? [] : p.gone.length > 0 || p.defs.length > 0 ? this.defs.slice() : this.defs;
    let live = key ? 0 : this.live;

    const gone: number[] = [];
    if (key && p.gone.length > 0) this.bad("a keyframe lists gone series");
    for (const id of p.gone) {
      if (defs[id] === undefined) this.bad(`gone series ${id} is not defined`);
      defs[id] = undefined;
      live--;
      gone.push(id);
    }

    const defined: number[] = [];
    const d = p.defs;
    const str = (k: number, what: string): string => {
      const s = strings[k];
      if (s === undefined) this.bad(`${what} refers to string ${k} of ${strings.length}`);
      return s;
    };
    for (let k = 0; k < d.length; ) {
      if (k + 6 > d.length) this.bad("truncated definition");
      const id = d[k]!;
      const name = str(d[k + 1]!, "name");
      const type = d[k + 2]!;
      const family = str(d[k + 3]!, "family");
      const help = str(d[k + 4]!, "help");
      const n = d[k + 5]!;
      k += 6;
      if (id >= this.limits.maxSeriesPerOrigin) this.bad(`series id ${id} over the limit ${this.limits.maxSeriesPerOrigin}`);
      if (type > SERIES_TYPE_MAX) this.bad(`series ${id}: unknown type ${type}`);
      if (!isMetricName(name)) this.bad(`series ${id}: bad metric name ${JSON.stringify(name.slice(0, 80))}`);
      if (!isMetricName(family)) this.bad(`series ${id}: bad family name ${JSON.stringify(family.slice(0, 80))}`);
      if (n > this.limits.maxLabels) this.bad(`series ${id}: ${n} labels over the limit ${this.limits.maxLabels}`);
      if (k + 2 * n > d.length) this.bad("truncated labels");
      const labels: [string, string][] = [];
      for (let j = 0; j < n; j++, k += 2) {
        const ln = str(d[k]!, "label name");
        if (!isLabelName(ln)) this.bad(`series ${id}: bad label name ${JSON.stringify(ln.slice(0, 80))}`);
        if (j > 0 && !(labels[j - 1]![0] < ln)) this.bad(`series ${id}: labels not sorted and unique`);
        labels.push([ln, str(d[k + 1]!, "label value")]);
      }
      if (defs[id] !== undefined) this.bad(`series ${id} defined twice`);
      defs[id] = { name, labels, type: type as SeriesType, family, help };
      live++;
      defined.push(id);
    }
    if (live > this.limits.maxSeriesPerOrigin) this.bad(`${live} series over the limit ${this.limits.maxSeriesPerOrigin}`);

    // Values: check every id first, then write.
    const ids = undeltaIds(p.ids, this.limits.maxSeriesPerOrigin, "ids", (why) => this.bad(why));
    const rawIds = undeltaIds(p.rawIds, this.limits.maxSeriesPerOrigin, "rawIds", (why) => this.bad(why));
    for (const id of ids) if (defs[id] === undefined) this.bad(`value for undefined series ${id}`);
    for (const id of rawIds) if (defs[id] === undefined) this.bad(`raw value for undefined series ${id}`);
    if (key) {
      // Ids are strictly ascending within each column, so only an id in both columns is counted twice.
      let both = 0;
      for (let a = 0, b = 0; a < ids.length && b < rawIds.length; ) {
        if (ids[a]! < rawIds[b]!) a++;
        else if (ids[a]! > rawIds[b]!) b++;
        else {
          both++;
          a++;
          b++;
        }
      }
      const counted = ids.length + rawIds.length - both;
      if (counted !== live) this.bad(`key frame carries ${counted} values for ${live} series`);
    } else if (mode === "values" && p.live !== live) {
      this.bad(`values frame says the origin has ${p.live ?? "?"} series, ${live} are known here`);
    }
    let vals = this.vals;
    if (defs.length > vals.length) {
      let n = vals.length;
      while (n < defs.length) n *= 2;
      vals = new Float64Array(n);
      vals.set(this.vals);
    }
    if (key) vals.fill(NaN);
    const changed: number[] = [];
    for (let j = 0; j < ids.length; j++) {
      const id = ids[j]!;
      vals[id] = absolute ? decodeDecimal(p.vals[j]!) : addDecimal(vals[id]!, p.vals[j]!);
      changed.push(id);
    }
    const view = new DataView(p.rawVals.buffer, p.rawVals.byteOffset, p.rawVals.byteLength);
    for (let j = 0; j < rawIds.length; j++) {
      vals[rawIds[j]!] = view.getFloat64(j * 8, true);
      changed.push(rawIds[j]!);
    }

    this.strings = strings;
    this.defs = defs;
    this.vals = vals;
    this.live = live;
    return { changed, defined, gone };
  }

  private bad(why: string): never {
    throw new BanyanError(Code.Protocol, `frame: ${why}`);
  }
}

function undeltaIds(gaps: readonly number[], limit: number, what: string, bad: (why: string) => never): number[] {
  const out = new Array<number>(gaps.length);
  let id = -1;
  for (let k = 0; k < gaps.length; k++) {
    id += gaps[k]! + 1;
    if (id >= limit) bad(`${what}: series id ${id} over the limit ${limit}`);
    out[k] = id;
  }
  return out;
}
