import { BanyanError, Code } from "../core/errors.js";
import { grownTo } from "../core/typed-arrays.js";
import { addDecimal, decodeDecimal } from "./decimal.js";
import { DEFAULT_SERIES_LIMITS, type FrameMode, type Payload, type SeriesLimits } from "./payload.js";
import { SERIES_TYPE_MAX, type SeriesDef, type SeriesType, isLabelName, isMetricName } from "./series-def.js";
import { SHARED_SERIES_DEFS, type SeriesDefTable } from "./series-def-table.js";

/**
 * What one frame changed, for the root's caches: ids whose value, or definition, changed. The
 * arrays are scratch space shared by every decoder (the root applies one frame at a time): read them
 * before applying another frame.
 */
export interface AppliedFrame {
  /** Ids whose value changed: the first `changedCount` entries (the array is longer, and reused). */
  readonly changed: Int32Array;
  readonly changedCount: number;
  readonly defined: readonly number[];
  readonly gone: readonly number[];
}

/**
 * Per series id, 16 bytes side by side, four ids to a cache line: the value (`num[2·id]`), the
 * decoder's flags (`word[4·id+2]`: 1 while the series is defined) and a word its owner keeps
 * (`word[4·id+3]`; the root's OriginState: its family's slot and whether its text is stale). One
 * frame's few changed values touch one line each: in separate arrays of values, definitions, slots
 * and flags they cost a cache miss apiece, and at 2,000 origins those misses were half the store's
 * time per frame (5 µs against 2 µs at 64 origins).
 */
export interface SeriesCells {
  readonly num: Float64Array;
  readonly word: Uint32Array;
}

const DEFINED = 1;

/** One definition's labels, flat (name, value, …), while it is checked: scratch shared by every decoder. */
const LABELS: string[] = [];

/** `c` if it holds `min` ids, else a copy doubled to fit them (zeros past the old end; at least 64 ids). */
function cellsGrownTo(c: SeriesCells, min: number): SeriesCells {
  const num = grownTo(c.num, 2 * min, 128);
  return num === c.num ? c : { num, word: new Uint32Array(num.buffer) };
}

/**
 * The root's copy of one origin in one epoch: the string table, the series definitions and the
 * current values. A frame is checked whole before any of it is applied, so a bad frame leaves the
 * state as it was (the caller then asks the origin for a keyframe).
 */
export class DeltaDecoder {
  private strings: string[] = [];
  /** Characters in `strings`, all together (bounded by `maxStringChars`). */
  private stringChars = 0;
  private defs: (SeriesDef | undefined)[] = [];
  /** Sized at the first frame (a root allocates this once per origin and keyframe, not per sample). */
  private idCells: SeriesCells = NO_CELLS;
  private live = 0;
  private version = 0;

  constructor(
    private readonly limits: SeriesLimits = DEFAULT_SERIES_LIMITS,
    /** Where definitions are shared with other origins' (the process's table unless a test gives its own). */
    private readonly table: SeriesDefTable = SHARED_SERIES_DEFS,
  ) {}

  get size(): number {
    return this.live;
  }

  /** Bumped whenever a frame defines or ends series: what a cache of facts read from the definitions checks. */
  get definitionsVersion(): number {
    return this.version;
  }

  /** Highest id + 1 that has ever been defined (iterate 0..capacity and skip undefined). */
  get capacity(): number {
    return this.defs.length;
  }

  def(id: number): SeriesDef | undefined {
    return this.defs[id];
  }

  value(id: number): number {
    return this.idCells.num[2 * id]!;
  }

  /** The per-id cells (a new pair after a frame that defined a higher id: read it again after each apply). */
  get cells(): SeriesCells {
    return this.idCells;
  }

  /**
   * Applies a KEY frame (the state starts afresh), a VALUES frame (every series' absolute value on
   * top of the tables as they are) or a DELTA frame. Throws a Protocol error on bad content.
   */
  apply(p: Payload, mode: FrameMode): AppliedFrame {
    const before = this.strings.length;
    const undo = UNDO;
    undo.gone.length = 0;
    undo.goneDefs.length = 0;
    undo.defined.length = 0;
    try {
      return this.applyChecked(p, mode, undo);
    } catch (err) {
      // A DELTA or VALUES frame changes the tables in place (copying them per frame was quadratic
      // in tables that only grow): a refused frame takes its changes back, newest first.
      // Flags written past the held cells went into a grown copy that is dropped with the frame.
      if (mode !== "key") {
        this.strings.length = before;
        const { word } = this.idCells;
        const held = word.length / 4;
        for (let k = undo.defined.length - 1; k >= 0; k--) {
          const id = undo.defined[k]!;
          this.defs[id] = undefined;
          if (id < held) word[4 * id + 2] = 0;
        }
        for (let k = undo.gone.length - 1; k >= 0; k--) {
          this.defs[undo.gone[k]!] = undo.goneDefs[k];
          word[4 * undo.gone[k]! + 2] = DEFINED;
        }
      }
      throw err;
    }
  }

  private applyChecked(p: Payload, mode: FrameMode, undo: typeof UNDO): AppliedFrame {
    const key = mode === "key";
    const absolute = mode !== "delta";
    let added = 0;
    for (const s of p.strings) added += s.length;
    const chars = key ? added : this.stringChars + added;
    if (chars > this.limits.maxStringChars) this.bad(`string table of ${chars} characters over the limit ${this.limits.maxStringChars}`);
    const count = key ? p.strings.length : this.strings.length + p.strings.length;
    if (count > this.limits.maxStrings) this.bad(`string table of ${count} over the limit ${this.limits.maxStrings}`);
    const strings = key ? [...p.strings] : this.strings;
    if (!key) for (const s of p.strings) strings.push(s);
    const defs: (SeriesDef | undefined)[] = key ? [] : this.defs;
    // A keyframe fills fresh cells (this decoder's stay as they were if it is refused).
    let cells = key ? NO_CELLS : this.idCells;
    let live = key ? 0 : this.live;

    if (key && p.gone.length > 0) this.bad("a keyframe lists gone series");
    const gone: number[] = p.gone.length > 0 ? [] : NO_IDS;
    for (const id of p.gone) {
      const was = defs[id];
      if (was === undefined) this.bad(`gone series ${id} is not defined`);
      undo.gone.push(id);
      undo.goneDefs.push(was);
      defs[id] = undefined;
      cells.word[4 * id + 2] = 0;
      live--;
      gone.push(id);
    }

    const defined: number[] = p.defs.length > 0 ? [] : NO_IDS;
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
      const labels = LABELS;
      for (let j = 0; j < n; j++, k += 2) {
        const ln = str(d[k]!, "label name");
        if (!isLabelName(ln)) this.bad(`series ${id}: bad label name ${JSON.stringify(ln.slice(0, 80))}`);
        if (j > 0 && !(labels[2 * j - 2]! < ln)) this.bad(`series ${id}: labels not sorted and unique`);
        labels[2 * j] = ln;
        labels[2 * j + 1] = str(d[k + 1]!, "label value");
      }
      if (defs[id] !== undefined) this.bad(`series ${id} defined twice`);
      defs[id] = this.table.get(name, type as SeriesType, family, help, labels, n);
      cells = cellsGrownTo(cells, id + 1);
      cells.word[4 * id + 2] = DEFINED;
      undo.defined.push(id);
      live++;
      defined.push(id);
    }
    if (live > this.limits.maxSeriesPerOrigin) this.bad(`${live} series over the limit ${this.limits.maxSeriesPerOrigin}`);

    // Values: check every id first, then write (two walks over the gap-coded ids, no array of them).
    const { num, word } = cells;
    this.checkIds(p.ids, word, "ids", "value");
    this.checkIds(p.rawIds, word, "rawIds", "raw value");
    const applied = APPLIED;
    if (applied.changed.length < p.ids.length + p.rawIds.length) applied.changed = new Int32Array(Math.max(2 * applied.changed.length, p.ids.length + p.rawIds.length));
    if (key) {
      // Ids are strictly ascending within each column, so only an id in both columns is counted twice.
      const counted = p.ids.length + p.rawIds.length - commonIds(p.ids, p.rawIds);
      if (counted !== live) this.bad(`key frame carries ${counted} values for ${live} series`);
    } else if (mode === "values" && p.live !== live) {
      this.bad(`values frame says the origin has ${p.live ?? "?"} series, ${live} are known here`);
    }
    if (key) for (let id = 0; id < num.length / 2; id++) num[2 * id] = NaN;
    const changed = applied.changed;
    let n = 0;
    const gaps = p.ids;
    const packed = p.vals;
    let id = -1;
    for (let j = 0; j < gaps.length; j++) {
      id += gaps[j]! + 1;
      num[2 * id] = absolute ? decodeDecimal(packed[j]!) : addDecimal(num[2 * id]!, packed[j]!);
      changed[n++] = id;
    }
    if (p.rawIds.length > 0) {
      const view = new DataView(p.rawVals.buffer, p.rawVals.byteOffset, p.rawVals.byteLength);
      id = -1;
      for (let j = 0; j < p.rawIds.length; j++) {
        id += p.rawIds[j]! + 1;
        num[2 * id] = view.getFloat64(j * 8, true);
        changed[n++] = id;
      }
    }

    this.strings = strings;
    this.stringChars = chars;
    this.defs = defs;
    this.idCells = cells;
    this.live = live;
    if (defined.length > 0 || gone.length > 0) this.version++;
    applied.changedCount = n;
    applied.defined = defined;
    applied.gone = gone;
    return applied;
  }

  /** Every gap-coded id of a column is under the limit and names a defined series (its flag in the cells). */
  private checkIds(gaps: readonly number[], word: Uint32Array, what: string, valueWhat: string): void {
    const limit = this.limits.maxSeriesPerOrigin;
    const held = word.length / 4;
    let id = -1;
    for (let k = 0; k < gaps.length; k++) {
      id += gaps[k]! + 1;
      if (id >= limit) this.bad(`${what}: series id ${id} over the limit ${limit}`);
      if (id >= held || (word[4 * id + 2]! & DEFINED) === 0) this.bad(`${valueWhat} for undefined series ${id}`);
    }
  }

  private bad(why: string): never {
    throw new BanyanError(Code.Protocol, `frame: ${why}`);
  }
}

/** The empty `gone` and `defined` of most frames (frozen: nothing may push into it). */
const NO_IDS = Object.freeze([]) as unknown as number[];
const NO_CELLS: SeriesCells = { num: new Float64Array(0), word: new Uint32Array(0) };
/**
 * The scratch every decoder returns (see AppliedFrame): one for the process, so that a keyframe's
 * fresh decoder allocates no buffer of its own (at a start storm, thousands of small ArrayBuffers a
 * second counted as external memory and brought on full collections of a multi-GB heap).
 */
/** What a frame changed in the tables in place, so that a refused one is taken back (shared like APPLIED). */
const UNDO = { gone: [] as number[], goneDefs: [] as SeriesDef[], defined: [] as number[] };
const APPLIED = { changed: new Int32Array(1024), changedCount: 0, defined: NO_IDS, gone: NO_IDS };

/** How many ids two ascending gap-coded columns share. */
function commonIds(a: readonly number[], b: readonly number[]): number {
  let both = 0;
  let ia = a.length > 0 ? a[0]! : -1;
  let ib = b.length > 0 ? b[0]! : -1;
  for (let x = 0, y = 0; x < a.length && y < b.length; ) {
    if (ia < ib) {
      if (++x < a.length) ia += a[x]! + 1;
    } else if (ia > ib) {
      if (++y < b.length) ib += b[y]! + 1;
    } else {
      both++;
      if (++x < a.length) ia += a[x]! + 1;
      if (++y < b.length) ib += b[y]! + 1;
    }
  }
  return both;
}
