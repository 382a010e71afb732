import { SeriesType, type SeriesDef } from "../../series/series-def.js";
import { familyHeader, type ExpositionFormat } from "./exposition-text.js";
import { OFF_PAGE, writesReserved } from "./page-family.js";

export { pageFamilyOf } from "./page-family.js";

/**
 * The root's Prometheus page, rendered incrementally. Every origin keeps, per metric family, a
 * cached chunk of its lines as UTF-8 bytes; a frame only marks the chunks of the families it
 * touched, and only the values that changed are formatted again. A scrape walks the families (so
 * each `# TYPE` appears once, as the text format requires) and copies the chunks of the origins that
 * are up into one buffer: a million series is mostly memcpy.
 * Each series' `name{labels,instance="…"} ` prefix is built once, when the series is defined.
 * (Measured: chunks kept as strings built with `+=` are ropes that every scrape walks again —
 * 767 ms for a cached 1M-series page; as flat byte buffers the same page is a copy.)
 */

const NO_MEMBERS: ReadonlySet<never> = new Set();

/** One family of one origin: its series ids and its cached lines (null when stale). */
export interface OriginFamily {
  readonly family: FamilyEntry;
  /** The type and HELP this origin gives the family (its first series'); the page shows the family's winner. */
  readonly type: SeriesType;
  readonly help: string;
  /** `type\0help`: its ballot in the family's vote on HELP (made once: a node going down or up re-counts hundreds of families). */
  readonly ballot: string;
  /** The origin the lines belong to. */
  readonly view: SeriesView;
  /** In ascending order when `sorted`; new ids are appended and sorted once before the next render. */
  ids: number[];
  sorted: boolean;
  /** `ids` copied to its length since it last grew (push leaves room for 17: ~70 B a series at a root). */
  packed: boolean;
  /**
   * Its lines as the page copies them (null: to be rendered again). A render while no other page is
   * open writes a family's lines again into the same buffer when they are as long as before (a
   * value that moved within its digits: most of them), so a scrape after a tick allocates little
   * for the chunks that moved (one 8 KB pool ArrayBuffer per ~20 new chunks was a tenth of a busy
   * root's CPU, and their churn drove its collector).
   */
  chunk: Buffer | null;
  /** The view's own index of this family (where it marks that a value changed). */
  readonly slot: number;
}

interface FamilyEntry {
  readonly name: string;
  /** What the page writes: the type most shown origins give the family, and their most common HELP. */
  type: SeriesType;
  help: string;
  /** Origins whose series are on the page (up), whatever type they give it. */
  readonly members: Set<OriginFamily>;
  /** Shown members per type, and per type and HELP (`type\0help`): the vote. */
  readonly types: Map<SeriesType, number>;
  readonly helps: Map<string, number>;
  /** The vote changed since type and help were chosen. */
  dirty: boolean;
  /** Origin families that hold the entry, shown or not: at 0 it leaves the cache. */
  refs: number;
}

/**
 * What the cache needs of an origin's state: a series' prefix (UTF-8 bytes: its length, a copy), its value formatted (ASCII),
 * and whether a family's values changed since its chunk was built (the mark is cleared by asking:
 * a frame marks the family in the origin's own small arrays, not the chunk, so applying a sample
 * touches a few cache lines of one origin instead of an object per family).
 */
export interface SeriesView {
  prefixLength(id: number): number;
  copyPrefix(id: number, out: Buffer, at: number): number;
  valueText(id: number): string;
  takeChanged(of: OriginFamily): boolean;
}

/**
 * A page's parts in order, valid until `done`: they point into the chunks, which a later render
 * may write again in place once no other page is open. Call `done` once they are copied (or given
 * up); a page never closed only keeps every later render allocating, as before the reuse.
 */
export interface PageParts {
  readonly parts: Buffer[];
  done(): void;
}

export class ExpositionCache {
  private readonly families = new Map<string, FamilyEntry>();
  private sorted: FamilyEntry[] | null = null;
  private skipped = { reserved: 0, shadowed: 0, malformed: 0 };
  /** Pages rendered by `renderSliced` whose parts are not copied yet. */
  private openPages = 0;

  /**
   * The family entry for a definition, held by one more origin family (created on first sight).
   * Which TYPE and HELP the page shows is a vote of the origins on the page, not who spoke first:
   * the type most of them give (ties: the lower type code), and among those the most common HELP
   * (ties: the smaller text). An origin that gives another type is left off the page and counted
   * (`conflicting`), so the page keeps one # TYPE line per family whatever the peers send.
   */
  family(name: string, def: SeriesDef): FamilyEntry {
    let f = this.families.get(name);
    if (f === undefined) {
      f = { name, type: def.type, help: def.help, members: new Set(), types: new Map(), helps: new Map(), dirty: false, refs: 0 };
      this.families.set(name, f);
      this.sorted = null;
    }
    f.refs++;
    return f;
  }

  /** An origin family is gone (its series went, or its origin was forgotten or restated). */
  release(of: OriginFamily): void {
    this.show(of, false);
    const f = of.family;
    if (--f.refs > 0) return;
    // Families leave with their last origin: names a peer made up do not pile up.
    if (this.families.get(f.name) === f) {
      this.families.delete(f.name);
      this.sorted = null;
    }
  }

  /** Shows (or hides, for a node that went down) an origin family in the page. */
  show(of: OriginFamily, visible: boolean): void {
    const f = of.family;
    if (visible === f.members.has(of)) return;
    const by = visible ? 1 : -1;
    if (visible) f.members.add(of);
    else f.members.delete(of);
    bump(f.types, of.type, by);
    bump(f.helps, of.ballot, by);
    f.dirty = true;
  }

  /** The families of the series shown (type and help as the page writes them). */
  *shownFamilies(): IterableIterator<{ readonly name: string; readonly type: SeriesType; readonly help: string }> {
    for (const f of this.families.values()) if (f.members.size > 0) yield elect(f);
  }

  /** The shown origins' parts of a family (by family name: a histogram's, not its `_bucket`'s), for a lookup by metric name. */
  shownMembers(family: string): ReadonlySet<OriginFamily> {
    return this.families.get(family)?.members ?? NO_MEMBERS;
  }

  /** Origin families on the page's families whose type lost the vote (left off the page). */
  get conflicting(): number {
    let n = 0;
    for (const f of this.families.values()) if (f.types.size > 1) n += f.members.size - (elect(f).types.get(f.type) ?? 0);
    return n;
  }

  get familyCount(): number {
    return this.families.size;
  }

  /**
   * The page body of the forwarded series as byte chunks, in order (the caller concatenates). Its
   * chunks are never written again in place (the caller may keep them): for tests and small pages.
   */
  render(format: ExpositionFormat, reserved: ReadonlySet<string> = NO_NAMES): Buffer[] {
    const parts: Buffer[] = [];
    for (const _ of this.gather(format, parts, () => false, Infinity, reserved));
    return parts;
  }

  /**
   * Series left off the last page rendered: `reserved`, their family (or a sample name of it) is
   * one the root writes itself; `shadowed`, their family is named like a sample of a histogram or
   * summary family on the page (`lat_bucket` beside histogram `lat`); `malformed`, a summary's
   * quantile or a histogram's le that is not a number.
   */
  get offPage(): { readonly reserved: number; readonly shadowed: number; readonly malformed: number } {
    return this.skipped;
  }

  /**
   * The same, yielding to the event loop every `sliceMs` of work (10), so frames keep being applied while
   * a big page renders (a 1M-series page after a busy tick is ~0.5 s of work; in one piece it held
   * ingestion up that long, and the root took its own pause for silent nodes). A frame only marks
   * chunks; they are written by renders, and while this page is open only this render writes into
   * a chunk in place (another open page makes every render write into new memory: see PageParts),
   * each chunk once, before it is gathered. So the parts gathered before a pause stay as they were;
   * families rendered after it may be a frame newer, which a scrape cannot tell from a slightly
   * later scrape.
   */
  async renderSliced(format: ExpositionFormat, reserved: ReadonlySet<string> = NO_NAMES, sliceMs = 10): Promise<PageParts> {
    const parts: Buffer[] = [];
    this.openPages++;
    let open = true;
    const done = (): void => {
      if (!open) return;
      open = false;
      this.openPages--;
    };
    try {
      // Asked at each chunk: another page may have opened or closed while this one yielded.
      for (const _ of this.gather(format, parts, () => this.openPages === 1, sliceMs, reserved)) await yieldToLoop();
    } catch (err) {
      done();
      throw err;
    }
    return { parts, done };
  }

  /** Gathers the page's parts, rendering the chunks that moved (in place when `inPlace()` says so); pauses after each `sliceMs` of work. */
  private *gather(format: ExpositionFormat, parts: Buffer[], inPlace: () => boolean, sliceMs: number, reserved: ReadonlySet<string>): Generator<void> {
    let sliceStart = performance.now();
    let work = 0;
    const skipped = { reserved: 0, shadowed: 0, malformed: 0 };
    // Sample names of the histogram and summary families written so far: a parser files a family of
    // such a name under them (a second # TYPE line). The page is sorted, so they come first.
    const shadows = new Set<string>();
    for (const f of this.sortedFamilies()) {
      if (f.members.size === 0) continue;
      elect(f);
      // A family the root writes itself (banyan_node_up, its own metrics, the aggregates): a node's
      // would be a second # TYPE line for it, and a strict consumer would refuse the whole page.
      const off = f.name === OFF_PAGE ? "malformed" : reserved.size > 0 && writesReserved(f, reserved) ? "reserved" : shadows.has(f.name) ? "shadowed" : null;
      if (off !== null) {
        for (const of of f.members) skipped[off] += of.ids.length;
        continue;
      }
      if (f.type === SeriesType.HistogramPart) shadows.add(`${f.name}_bucket`);
      if (f.type === SeriesType.HistogramPart || f.type === SeriesType.SummaryPart) shadows.add(`${f.name}_sum`).add(`${f.name}_count`);
      parts.push(Buffer.from(familyHeader(f.name, f.type, f.help, format)));
      for (const of of f.members) {
        if (of.type !== f.type) continue;
        if (of.view.takeChanged(of) || of.chunk === null) {
          renderChunk(of, inPlace());
          work += of.ids.length;
        }
        parts.push(of.chunk!);
        // Checking the clock costs more than copying a small chunk: look every ~2,000 series of work.
        if (++work >= 2048) {
          work = 0;
          if (performance.now() - sliceStart >= sliceMs) {
            yield;
            sliceStart = performance.now();
          }
        }
      }
    }
    this.skipped = skipped;
  }

  private sortedFamilies(): readonly FamilyEntry[] {
    if (this.sorted === null) this.sorted = [...this.families.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    return this.sorted;
  }

  /** The same as one string (tests, small pages). */
  renderText(format: ExpositionFormat): string {
    return Buffer.concat(this.render(format)).toString("utf8");
  }
}

/** An origin family's ballot in its family's HELP vote: `type\0help`. */
export function helpBallot(type: SeriesType, help: string): string {
  return `${type}\0${help}`;
}

function bump<K>(m: Map<K, number>, k: K, by: number): void {
  const n = (m.get(k) ?? 0) + by;
  if (n > 0) m.set(k, n);
  else m.delete(k);
}

/** Counts the family's vote again when it changed (a few distinct types and texts: cheap). */
function elect(f: FamilyEntry): FamilyEntry {
  if (!f.dirty) return f;
  f.dirty = false;
  let type = f.type;
  let most = -1;
  for (const [t, n] of f.types) if (n > most || (n === most && t < type)) [type, most] = [t, n];
  f.type = type;
  let help = "";
  let votes = 0;
  const prefix = `${type}\0`;
  for (const [k, n] of f.helps) {
    if (!k.startsWith(prefix)) continue;
    const h = k.slice(prefix.length);
    // A HELP text beats none; then more origins; then the smaller text.
    const better = votes === 0 || (h !== "") !== (help !== "") ? votes === 0 || h !== "" : n !== votes ? n > votes : h < help;
    if (better) [help, votes] = [h, n];
  }
  f.help = help;
  return f;
}

/** Lets pending I/O (frames) run before the next slice of a long job. */
export function yieldToLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A family's ids settled: in ascending order (a stable line order) and copied to their length, each done once after ids were appended. */
export function settledIds(of: OriginFamily): readonly number[] {
  if (!of.sorted) {
    of.ids.sort((a, b) => a - b);
    of.sorted = true;
  }
  if (!of.packed) {
    of.ids = of.ids.slice();
    of.packed = true;
  }
  return of.ids;
}

/**
 * Writes an origin family's lines into its chunk: in place when `inPlace` and they are as long as
 * before, else into a new buffer. By copying: the prefixes are bytes already, the values ASCII
 * (measured on 1M series after a tick: 1.18 s building strings and encoding them instead).
 */
function renderChunk(of: OriginFamily, inPlace: boolean): void {
  const ids = settledIds(of);
  const view = of.view;
  let len = 0;
  for (let k = 0; k < ids.length; k++) len += view.prefixLength(ids[k]!) + view.valueText(ids[k]!).length + 1;
  const old = of.chunk;
  const out = inPlace && old !== null && old.length === len ? old : Buffer.allocUnsafe(len);
  let o = 0;
  for (let k = 0; k < ids.length; k++) {
    const id = ids[k]!;
    o += view.copyPrefix(id, out, o);
    o += out.write(view.valueText(id), o, "latin1");
    out[o++] = 10;
  }
  of.chunk = out;
}

const NO_NAMES: ReadonlySet<string> = new Set();
