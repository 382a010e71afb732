import { grownTo } from "../../core/typed-arrays.js";
import { DeltaDecoder, type AppliedFrame } from "../../series/delta-decoder.js";
import type { SeriesLimits } from "../../series/payload.js";
import type { FrameMode, Payload } from "../../series/payload.js";
import type { ExpositionCache, OriginFamily, SeriesView } from "../exposition/exposition-cache.js";
import { helpBallot, pageFamilyOf, settledIds } from "../exposition/exposition-cache.js";
import { formatValue, seriesPrefix } from "../exposition/exposition-text.js";
import { originIdentity, type OriginIdentity } from "../exposition/origin-identity.js";
import { PrefixArena } from "../exposition/prefix-arena.js";

/** What one child link has delivered: the newest sample time among its frames, and when it last delivered anything. */
export interface LinkClock {
  watermarkMs: number;
  arrivalMs: number;
}

/**
 * Everything the root holds for one origin: where it is in its stream (epoch, sequence), its
 * series and values (the decoder), and its share of the exposition cache.
 */
export class OriginState implements SeriesView, OriginIdentity {
  readonly instance: string;
  readonly cluster: string | null;
  /** The labels the root gives every series of the origin (`instance`, and `cluster` at a central root). */
  readonly labels: Readonly<Record<string, string>>;
  epoch = -1n;
  seq = 0n;
  /** Set after a gap or a bad frame: deltas are useless until the next keyframe. */
  needKey = true;
  lastSeenMs = 0;
  /** Sampling time of the latest frame or alive record applied: the values stand for that tick. */
  lastSampleMs = 0;
  /** When the last KEY frame was applied, and how long the next keyframe request waits after it (a flapping origin backs off). */
  lastKeyMs = -Infinity;
  keyGapMs = 0;
  up = false;
  /** The child link its latest frame or alive record came through (see RootStore.sweep). */
  link: LinkClock | null = null;
  private decoder: DeltaDecoder;
  private readonly prefixes = new PrefixArena();
  /** Each value as the page prints it: formatted when a scrape first needs it after a change (its stale bit), not per sample. */
  private texts: (string | undefined)[] = [];
  /**
   * Per series id, in the owner's word of the decoder's cells beside its value: its family's slot
   * and whether its text is stale (`slot << 1 | stale`); per slot: whether a value of the family
   * changed since its chunk was built. So a frame's samples touch one cache line each (writing into a
   * family object per sample was half the root's ingest time at a million series: cache misses).
   */
  private changedSlots = new Uint8Array(0);
  private slots: (OriginFamily | undefined)[] = [];
  private freeSlots: number[] = [];
  private readonly families = new Map<string, OriginFamily>();
  /** Ids of the node's own status series (banyan_node_parent_info, banyan_node_failovers_last_hour), or -1. */
  private parentInfoId = -1;
  private failoversId = -1;
  /** Ids of the node's banyan_job_* series (per-job accounting): what the root's job view reads. */
  readonly jobSeries = new Set<number>();

  constructor(
    readonly name: string,
    private readonly cache: ExpositionCache,
    private readonly limits: SeriesLimits,
  ) {
    this.decoder = new DeltaDecoder(limits);
    ({ instance: this.instance, cluster: this.cluster } = originIdentity(name));
    const labels: Record<string, string> = this.cluster !== null ? { cluster: this.cluster, instance: this.instance } : { instance: this.instance };
    this.labels = Object.freeze(labels);
  }

  get seriesCount(): number {
    return this.decoder.size;
  }

  prefixLength(id: number): number {
    return this.prefixes.length(id);
  }

  copyPrefix(id: number, out: Buffer, at: number): number {
    return this.prefixes.copy(id, out, at);
  }

  value(id: number): number {
    return this.decoder.value(id);
  }

  valueText(id: number): string {
    const { word } = this.decoder.cells;
    const w = word[4 * id + 3]!;
    if ((w & 1) === 1) {
      word[4 * id + 3] = w & ~1;
      this.texts[id] = formatValue(this.decoder.value(id));
    }
    return this.texts[id]!;
  }

  takeChanged(of: OriginFamily): boolean {
    if (this.changedSlots[of.slot] !== 1) return false;
    this.changedSlots[of.slot] = 0;
    return true;
  }

  get decoded(): DeltaDecoder {
    return this.decoder;
  }

  /** The value of the origin's first series called `name`, or null (a status page's lookup: it walks the series). */
  seriesValue(name: string): number | null {
    const d = this.decoder;
    for (let id = 0; id < d.capacity; id++) if (d.def(id)?.name === name) return d.value(id);
    return null;
  }

  /** The node's own account of its place in the trees, from its status series. */
  nodeStatus(): { parent: string | null; planned: string | null; failoversLastHour: number } {
    const def = this.parentInfoId >= 0 ? this.decoder.def(this.parentInfoId) : undefined;
    const label = (k: string): string | null => def?.labels.find(([n]) => n === k)?.[1] ?? null;
    const failovers = this.failoversId >= 0 ? this.decoder.value(this.failoversId) : 0;
    return { parent: label("parent"), planned: label("planned"), failoversLastHour: Number.isFinite(failovers) ? failovers : 0 };
  }

  /** Applies a frame (throws a Protocol error and changes nothing when it is bad). */
  apply(payload: Payload, mode: FrameMode): AppliedFrame {
    if (mode === "key") {
      // A keyframe restates everything: start from an empty decoder so a bad one leaves the old state.
      const fresh = new DeltaDecoder(this.limits);
      const applied = fresh.apply(payload, "key");
      this.decoder = fresh;
      this.rebuild();
      return applied;
    }
    const applied = this.decoder.apply(payload, mode);
    if (applied.gone.length > 0) this.forget(applied.gone);
    for (const id of applied.defined) this.learn(id);
    const { changed, changedCount } = applied;
    const { changedSlots } = this;
    const { word } = this.decoder.cells;
    for (let k = 0; k < changedCount; k++) {
      const at = 4 * changed[k]! + 3;
      const w = word[at]! | 1;
      word[at] = w;
      changedSlots[w >>> 1] = 1;
    }
    return applied;
  }

  /** Shows or hides all of this origin's series (a node that went down leaves the page). */
  setVisible(visible: boolean): void {
    this.up = visible;
    for (const of of this.families.values()) this.cache.show(of, visible);
  }

  /** Drops every series (the origin is forgotten). */
  clear(): void {
    this.jobSeries.clear();
    this.setVisible(false);
    for (const of of this.families.values()) this.cache.release(of);
    this.families.clear();
    this.resetIndex();
    this.prefixes.release();
    this.decoder = new DeltaDecoder(this.limits);
  }

  /** Empty per-id and per-slot tables (the slots' flags kept and cleared: a keyframe allocates no buffer for them). */
  private resetIndex(): void {
    this.prefixes.clear();
    this.texts = [];
    this.changedSlots.fill(0);
    this.slots = [];
    this.freeSlots = [];
  }

  /** A slot for a new family (a freed one first). */
  private newSlot(): number {
    const slot = this.freeSlots.pop() ?? this.slots.length;
    this.changedSlots = grownTo(this.changedSlots, slot + 1);
    this.changedSlots[slot] = 0;
    return slot;
  }

  private rebuild(): void {
    this.jobSeries.clear();
    this.parentInfoId = -1;
    this.failoversId = -1;
    for (const of of this.families.values()) this.cache.release(of);
    this.families.clear();
    this.resetIndex();
    for (let id = 0; id < this.decoder.capacity; id++) if (this.decoder.def(id) !== undefined) this.learn(id);
    // Sorted and copied to their length now, while the arrays that grew are young garbage (at the
    // first scrape they would have lived on in the old generation, and in the root's RSS).
    for (const of of this.families.values()) settledIds(of);
    this.prefixes.trim();
  }

  private learn(id: number): void {
    const def = this.decoder.def(id)!;
    if (def.name.startsWith("banyan_job_")) this.jobSeries.add(id);
    if (def.name === "banyan_node_parent_info") this.parentInfoId = id;
    else if (def.name === "banyan_node_failovers_last_hour") this.failoversId = id;
    this.prefixes.set(id, seriesPrefix(def, this));
    this.texts[id] = undefined;
    const key = pageFamilyOf(def, (f) => this.families.get(f)?.type);
    let of = this.families.get(key);
    if (of === undefined) {
      of = { family: this.cache.family(key, def), type: def.type, help: def.help, ballot: helpBallot(def.type, def.help), view: this, ids: [], sorted: true, packed: true, chunk: null, slot: this.newSlot() };
      this.slots[of.slot] = of;
      this.families.set(key, of);
      if (this.up) this.cache.show(of, true);
    }
    // Appended; sorted once before the family's next render (a sorted insert per id was quadratic:
    // one frame of 100k ids in descending order held the event loop for seconds).
    const ids = of.ids;
    if (ids.length > 0 && ids[ids.length - 1]! > id) of.sorted = false;
    ids.push(id);
    of.packed = false;
    of.chunk = null;
    // Stale: its text is formatted at the next scrape.
    this.decoder.cells.word[4 * id + 3] = (of.slot << 1) | 1;
  }

  /**
   * Drops gone series from their families: one pass over each family they were in, whatever their
   * number (an indexOf and a splice per id was quadratic when 100k series of one family went).
   */
  private forget(gone: readonly number[]): void {
    const byFamily = new Map<OriginFamily, Set<number>>();
    for (const id of gone) {
      this.jobSeries.delete(id);
      if (id === this.parentInfoId) this.parentInfoId = -1;
      if (id === this.failoversId) this.failoversId = -1;
      this.texts[id] = undefined;
      this.prefixes.drop(id);
      // The decoder ended the series but keeps the owner's word until the id is defined again.
      const { word } = this.decoder.cells;
      const of = 4 * id + 3 < word.length ? this.slots[word[4 * id + 3]! >>> 1] : undefined;
      if (of === undefined) continue;
      let ids = byFamily.get(of);
      if (ids === undefined) byFamily.set(of, (ids = new Set()));
      ids.add(id);
    }
    for (const [of, ids] of byFamily) {
      const kept = of.ids;
      let n: number;
      if (ids.size <= 16 && of.sorted) {
        // A few: found by bisection, each a splice (a memmove).
        for (const id of ids) {
          const k = lowerBound(kept, id);
          if (kept[k] === id) kept.splice(k, 1);
        }
        n = kept.length;
      } else {
        n = 0;
        for (const id of kept) if (!ids.has(id)) kept[n++] = id;
        kept.length = n;
      }
      of.chunk = null;
      if (n === 0) {
        this.cache.release(of);
        this.families.delete(of.family.name);
        this.slots[of.slot] = undefined;
        this.freeSlots.push(of.slot);
      }
    }
  }
}

/** The first index of ascending `a` whose value is not below `x`. */
function lowerBound(a: readonly number[], x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
