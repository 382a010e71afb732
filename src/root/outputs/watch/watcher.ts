import type { SeriesDef } from "../../../series/series-def.js";
import type { WatchSpec } from "./watch-spec.js";
import type { OriginView } from "../root-output.js";

/** One series (or group) in a message: its labels as Prometheus shows them, its value and sample time. */
export interface WatchSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
  readonly timeMs: number;
  /** The series (or the group's last member) left: its node went down or moved, or the series ended. */
  readonly gone?: true;
}

export interface WatchMessage {
  /** The first message is the current state of everything matched; then only what changed. */
  readonly kind: "snapshot" | "update";
  readonly timeMs: number;
  readonly samples: readonly WatchSample[];
}

/** Where a watcher's messages go (an SSE response, a gRPC stream). */
export interface WatchSink {
  send(m: WatchMessage): void;
  /** Bytes written and not yet taken by the consumer: past the hub's bound the watcher is dropped. */
  pendingBytes(): number;
  /** The watcher ends (the hub dropped it, or the root stops): the reason is the consumer's last message. */
  close(reason: string): void;
}

/** A watched series: which origin and id, its labels, and where it stands in the watcher's flushes. */
export interface Member {
  readonly watcher: Watcher;
  readonly origin: OriginView;
  readonly id: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly group: Group | null;
  lastSentMs: number;
  dirty: boolean;
}

interface Group {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly members: Set<Member>;
  lastSentMs: number;
  dirty: boolean;
}

/**
 * One consumer's watch: the series it matched (members), or their groups when it aggregates, and
 * what changed since its last message. A change marks a member (or its group) dirty; `flush` sends
 * each dirty one not yet sent in this interval's window (intervals counted on the root's clock), so
 * a series is pushed once per window at most, and as soon as the root applies it when it changes
 * once per interval or less. An aggregate
 * is computed afresh from its members when sent (no running sum to drift), PromQL's way: NaN
 * members are skipped, `by` labels the series lack are left out.
 */
export class Watcher {
  /** Its members, so closing it touches only them. */
  readonly members = new Set<Member>();
  private dirtyMembers: Member[] = [];
  private dirtyGroups: Group[] = [];
  private readonly groups = new Map<string, Group>();
  private gone: WatchSample[] = [];
  /** Nothing deferred is due before this (a flush before it only sends what is newly dirty). */
  private nextDueMs = Infinity;
  /** Something was marked dirty since the last flush. */
  private fresh = false;
  closed = false;

  constructor(
    readonly spec: WatchSpec,
    readonly sink: WatchSink,
    private readonly maxSeries: number,
  ) {}

  get seriesCount(): number {
    return this.members.size;
  }

  wants(def: SeriesDef, origin: OriginView): boolean {
    for (const s of this.spec.selectors) if (s.matches(def.name, def.labels, origin.labels)) return true;
    return false;
  }

  /** A matching series joins; null when the watcher already has its most series (the hub drops it). */
  join(origin: OriginView, id: number, def: SeriesDef): Member | null {
    if (this.members.size >= this.maxSeries) return null;
    const labels: Record<string, string> = { __name__: def.name };
    for (const [k, v] of def.labels) if (v !== "") labels[k] = v;
    Object.assign(labels, origin.labels);
    const group = this.spec.agg !== null ? this.groupOf(labels) : null;
    const m: Member = { watcher: this, origin, id, labels, group, lastSentMs: -Infinity, dirty: false };
    this.members.add(m);
    group?.members.add(m);
    this.touch(m);
    return m;
  }

  /** A member left (series gone, node down or moved); `announce`: tell the consumer. */
  leave(m: Member, nowMs: number, announce = true): void {
    this.members.delete(m);
    m.dirty = false;
    if (m.group === null) {
      if (announce) this.gone.push({ labels: m.labels, value: NaN, timeMs: nowMs, gone: true });
      return;
    }
    m.group.members.delete(m);
    this.markGroup(m.group);
  }

  /** A series that left without its member (an origin's KEY frame no longer has it): announced gone. */
  goneLabels(labels: Readonly<Record<string, string>>, nowMs: number): void {
    if (this.spec.agg === null) this.gone.push({ labels, value: NaN, timeMs: nowMs, gone: true });
  }

  touch(m: Member): void {
    if (m.group !== null) return this.markGroup(m.group);
    if (m.dirty) return;
    m.dirty = true;
    this.fresh = true;
    this.dirtyMembers.push(m);
  }

  /** The current state of everything, as the first message. */
  snapshot(nowMs: number): WatchMessage {
    const samples: WatchSample[] = [];
    // The snapshot is not counted as a series' message of this window: a change right after it still goes at once.
    if (this.spec.agg === null) {
      for (const m of this.dirtyMembers) samples.push(this.sampleOf(m, -Infinity));
      this.dirtyMembers = [];
    } else {
      for (const g of this.groups.values()) if (g.members.size > 0) samples.push(this.groupSample(g, -Infinity));
      for (const g of this.dirtyGroups) g.dirty = false;
      this.dirtyGroups = [];
    }
    this.gone = [];
    this.fresh = false;
    return { kind: "snapshot", timeMs: nowMs, samples };
  }

  /** What is due now, or null. */
  flush(nowMs: number): WatchMessage | null {
    if (this.gone.length === 0 && this.dirtyMembers.length === 0 && this.dirtyGroups.length === 0) return null;
    const samples: WatchSample[] = this.gone;
    this.gone = [];
    this.fresh = false;
    // Windows of the interval on the root's clock: a series goes at most once in each. Spacing each
    // series' messages an interval apart instead pinned it to the phase of its first message (the
    // snapshot's): measured, a tenth of the updates then waited 0.4-0.9 s for a change that came
    // at another phase of the tick.
    const interval = this.spec.intervalMs;
    const window = Math.floor(nowMs / interval);
    const windowEnd = (window + 1) * interval;
    let nextDue = Infinity;
    if (this.spec.agg === null) {
      const kept: Member[] = [];
      for (const m of this.dirtyMembers) {
        if (!m.dirty) continue;
        if (Math.floor(m.lastSentMs / interval) < window) samples.push(this.sampleOf(m, nowMs));
        else {
          kept.push(m);
          nextDue = windowEnd;
        }
      }
      this.dirtyMembers = kept;
    } else {
      const kept: Group[] = [];
      for (const g of this.dirtyGroups) {
        if (Math.floor(g.lastSentMs / interval) >= window) {
          kept.push(g);
          nextDue = windowEnd;
          continue;
        }
        g.dirty = false;
        if (g.members.size === 0) {
          this.groups.delete(g.key);
          samples.push({ labels: g.labels, value: NaN, timeMs: nowMs, gone: true });
        } else samples.push(this.groupSample(g, nowMs));
      }
      this.dirtyGroups = kept;
    }
    this.nextDueMs = nextDue;
    return samples.length > 0 ? { kind: "update", timeMs: nowMs, samples } : null;
  }

  /** Whether a flush now could send anything: something newly dirty, or a deferred one come due. */
  due(nowMs: number): boolean {
    return this.fresh || this.gone.length > 0 || nowMs >= this.nextDueMs;
  }

  private sampleOf(m: Member, sentMs: number): WatchSample {
    m.dirty = false;
    m.lastSentMs = sentMs;
    return { labels: m.labels, value: m.origin.value(m.id), timeMs: m.origin.lastSampleMs };
  }

  private groupSample(g: Group, sentMs: number): WatchSample {
    g.lastSentMs = sentMs;
    let sum = 0;
    let count = 0;
    let min = Infinity;
    let max = -Infinity;
    let t = 0;
    for (const m of g.members) {
      const v = m.origin.value(m.id);
      if (m.origin.lastSampleMs > t) t = m.origin.lastSampleMs;
      if (v !== v) continue;
      sum += v;
      count++;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const op = this.spec.agg!.op;
    const value = op === "sum" ? sum : op === "count" ? count : count === 0 ? NaN : op === "avg" ? sum / count : op === "min" ? min : max;
    return { labels: g.labels, value, timeMs: t };
  }

  private groupOf(labels: Readonly<Record<string, string>>): Group {
    const by = this.spec.agg!.by;
    const out: Record<string, string> = {};
    let key = "";
    for (const b of by) {
      const v = labels[b];
      key += `${v ?? ""}\u0000`;
      if (v !== undefined && v !== "") out[b] = v;
    }
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { key, labels: out, members: new Set(), lastSentMs: -Infinity, dirty: false };
      this.groups.set(key, g);
    }
    return g;
  }

  private markGroup(g: Group): void {
    if (g.dirty) return;
    g.dirty = true;
    this.fresh = true;
    this.dirtyGroups.push(g);
  }
}
