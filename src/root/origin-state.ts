import { DeltaDecoder, type AppliedFrame } from "../series/delta-decoder.js";
import type { SeriesLimits } from "../series/payload.js";
import type { FrameMode, Payload } from "../series/payload.js";
import type { ExpositionCache, OriginFamily, SeriesView } from "./exposition-cache.js";
import { formatValue, seriesPrefix } from "./exposition-cache.js";

/** What one child link has delivered: the newest sample time among its frames, and when it last delivered anything. */
export interface LinkClock {
  watermarkMs: number;
  arrivalMs: number;
}

/**
 * Everything the root holds for one origin: where it is in its stream (epoch, sequence), its
 * series and values (the decoder), and its share of the exposition cache.
 */
export class OriginState implements SeriesView {
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
  private prefixes: Buffer[] = [];
  /** Each value as the page prints it, formatted when it changes, not at every scrape. */
  private texts: string[] = [];
  private familyOf: (OriginFamily | undefined)[] = [];
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
  }

  get seriesCount(): number {
    return this.decoder.size;
  }

  prefix(id: number): Buffer {
    return this.prefixes[id]!;
  }

  value(id: number): number {
    return this.decoder.value(id);
  }

  valueText(id: number): string {
    return this.texts[id]!;
  }

  get decoded(): DeltaDecoder {
    return this.decoder;
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
    for (const id of applied.gone) this.forget(id);
    for (const id of applied.defined) this.learn(id);
    for (const id of applied.changed) {
      this.texts[id] = formatValue(this.decoder.value(id));
      const of = this.familyOf[id];
      if (of !== undefined) of.chunk = null;
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
    this.families.clear();
    this.prefixes = [];
    this.texts = [];
    this.familyOf = [];
    this.decoder = new DeltaDecoder(this.limits);
  }

  private rebuild(): void {
    this.jobSeries.clear();
    this.parentInfoId = -1;
    this.failoversId = -1;
    for (const of of this.families.values()) this.cache.show(of, false);
    this.families.clear();
    this.prefixes = [];
    this.texts = [];
    this.familyOf = [];
    for (let id = 0; id < this.decoder.capacity; id++) if (this.decoder.def(id) !== undefined) this.learn(id);
  }

  private learn(id: number): void {
    const def = this.decoder.def(id)!;
    if (def.name.startsWith("banyan_job_")) this.jobSeries.add(id);
    if (def.name === "banyan_node_parent_info") this.parentInfoId = id;
    else if (def.name === "banyan_node_failovers_last_hour") this.failoversId = id;
    this.prefixes[id] = Buffer.from(seriesPrefix(def, this.name), "utf8");
    this.texts[id] = formatValue(this.decoder.value(id));
    let of = this.families.get(def.family);
    if (of === undefined) {
      of = { family: this.cache.family(def), view: this, ids: [], chunk: null };
      this.families.set(def.family, of);
      if (this.up) this.cache.show(of, true);
    }
    // Keep ids sorted so a family's lines come out in a stable order.
    const ids = of.ids;
    let k = ids.length;
    ids.push(id);
    while (k > 0 && ids[k - 1]! > id) {
      ids[k] = ids[k - 1]!;
      k--;
    }
    ids[k] = id;
    of.chunk = null;
    this.familyOf[id] = of;
  }

  private forget(id: number): void {
    this.jobSeries.delete(id);
    if (id === this.parentInfoId) this.parentInfoId = -1;
    if (id === this.failoversId) this.failoversId = -1;
    const of = this.familyOf[id];
    if (of === undefined) return;
    const k = of.ids.indexOf(id);
    if (k >= 0) of.ids.splice(k, 1);
    of.chunk = null;
    this.familyOf[id] = undefined;
    if (of.ids.length === 0) {
      this.cache.show(of, false);
      this.families.delete(of.family.name);
    }
  }
}
