import type { Registry } from "prom-client";
import { counter, gauge } from "../../../core/metric-names.js";
import type { AppliedFrame } from "../../../series/delta-decoder.js";
import type { SeriesDef } from "../../../series/series-def.js";
import type { DecodedSeries, HiddenReason, OriginView, OutputView, RootOutput } from "../root-output.js";
import type { WatchSpec } from "./watch-spec.js";
import { Watcher, type Member, type WatchSample, type WatchSink } from "./watcher.js";

export interface WatchLimits {
  /** Watchers open at once (gRPC and SSE together). */
  readonly maxWatchers: number;
  /** Series one watch may match (its aggregate's members count). */
  readonly maxSeriesPerWatch: number;
  /** Bytes a consumer may leave unread before it is dropped. */
  readonly maxPendingBytes: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = Object.freeze({ maxWatchers: 256, maxSeriesPerWatch: 100_000, maxPendingBytes: 4 * 1024 * 1024 });

/** How often watchers are flushed: the latency a change waits for at most, beyond the root's own. */
const FLUSH_EVERY_MS = 20;

interface Watched {
  /** The decoder the ids are of: a KEY frame brings a new one (and new ids). */
  decoder: DecodedSeries;
  readonly members: Map<number, Member[]>;
}

/**
 * The watch API's engine, an output of the root: it holds the watchers, finds the series each one
 * matches when they are defined (a watcher whose selectors all name a metric is only asked about
 * that metric), and on every applied frame marks the watched ids that changed. Nothing is done for
 * a frame no watcher looks at but one map lookup. A consumer that lets more than `maxPendingBytes`
 * pile up is dropped with the reason, so a slow one never slows ingestion or holds memory.
 */
export class WatchHub implements RootOutput {
  readonly name = "watch";
  private view: OutputView | null = null;
  private readonly watchers = new Set<Watcher>();
  private readonly byName = new Map<string, Set<Watcher>>();
  /** Watchers with a selector that names no metric: asked about every series. */
  private readonly anyName = new Set<Watcher>();
  private readonly watched = new Map<OriginView, Watched>();
  private timer: NodeJS.Timeout | null = null;
  private readonly m;

  constructor(
    private limits: WatchLimits,
    registry: Registry,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the gauge reads the hub when scraped
    const self = this;
    this.m = {
      dropped: counter(registry, "banyan_watch_dropped_total", "Watchers the root dropped, by reason (slow_consumer, too_many_series).", ["reason"] as const),
      refused: counter(registry, "banyan_watch_refused_total", "Watch requests refused, by reason (bad_request, too_many_watchers, too_many_series).", ["reason"] as const),
      messages: counter(registry, "banyan_watch_messages_total", "Messages sent to watchers."),
      watchers: gauge(registry, "banyan_watch_watchers", "Watchers open now.", [], function () {
        this.set(self.watchers.size);
      }),
    };
  }

  get watcherCount(): number {
    return this.watchers.size;
  }

  setLimits(limits: WatchLimits): void {
    this.limits = limits;
  }

  refusedRequest(reason: string): void {
    this.m.refused.inc({ reason });
  }

  start(view: OutputView): void {
    this.view = view;
    this.timer = setInterval(() => this.flush(Date.now()), FLUSH_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    for (const w of [...this.watchers]) this.close(w, "the root stops");
  }

  /** Opens a watch: its first message (the current state) is sent now. A string says why not. */
  open(spec: WatchSpec, sink: WatchSink, nowMs = Date.now()): Watcher | string {
    if (this.watchers.size >= this.limits.maxWatchers) {
      this.m.refused.inc({ reason: "too_many_watchers" });
      return `${this.watchers.size} watchers are open, the most this root serves (watch.maxWatchers)`;
    }
    const w = new Watcher(spec, sink, this.limits.maxSeriesPerWatch);
    const names = spec.selectors.map((s) => s.metricName);
    if (names.every((n) => n !== null)) for (const n of names) this.nameSet(n!).add(w);
    else this.anyName.add(w);
    this.watchers.add(w);
    const over = this.matchExisting(w, spec);
    if (over) {
      this.forget(w);
      this.m.refused.inc({ reason: "too_many_series" });
      return `the selectors match more than ${this.limits.maxSeriesPerWatch} series (watch.maxSeriesPerWatch)`;
    }
    sink.send(w.snapshot(nowMs));
    this.m.messages.inc();
    return w;
  }

  /** The consumer went away (or the hub drops it). */
  close(w: Watcher, reason: string | null = null): void {
    if (w.closed) return;
    this.forget(w);
    if (reason !== null) w.sink.close(reason);
  }

  /** A one-shot read (`/api/v1/query`): the current value of every matching series, or of each group. */
  query(spec: WatchSpec, nowMs = Date.now()): readonly WatchSample[] | string {
    const sink: WatchSink = { send: () => undefined, pendingBytes: () => 0, close: () => undefined };
    const w = new Watcher(spec, sink, this.limits.maxSeriesPerWatch);
    if (this.matchExisting(w, spec, false)) return `the selectors match more than ${this.limits.maxSeriesPerWatch} series (watch.maxSeriesPerWatch)`;
    return w.snapshot(nowMs).samples;
  }

  applied(origin: OriginView, applied: AppliedFrame): void {
    if (this.watchers.size === 0) return;
    const now = Date.now();
    const ws = this.watched.get(origin);
    if (ws !== undefined && ws.decoder !== origin.decoded) return this.shown(origin);
    if (ws !== undefined) {
      for (const id of applied.gone) this.dropId(ws, id, now);
      for (let k = 0; k < applied.changedCount; k++) {
        const list = ws.members.get(applied.changed[k]!);
        if (list !== undefined) for (const m of list) m.watcher.touch(m);
      }
    }
    for (const id of applied.defined) {
      const def = origin.decoded.def(id);
      if (def !== undefined) this.joinId(origin, id, def);
    }
  }

  shown(origin: OriginView): void {
    if (this.watchers.size === 0) return;
    const now = Date.now();
    // A KEY frame renumbers: the origin's members leave quietly and join again (a series that is
    // still there is sent again as an update, one that is not is announced gone).
    const old = this.watched.get(origin);
    const before = new Map<Watcher, Map<string, Readonly<Record<string, string>>>>();
    if (old !== undefined) {
      for (const list of old.members.values()) {
        for (const m of list) {
          let keys = before.get(m.watcher);
          if (keys === undefined) before.set(m.watcher, (keys = new Map()));
          keys.set(labelKey(m.labels), m.labels);
          m.watcher.leave(m, now, false);
        }
      }
      this.watched.delete(origin);
    }
    const d = origin.decoded;
    for (let id = 0; id < d.capacity; id++) {
      const def = d.def(id);
      if (def === undefined) continue;
      const joined = this.joinId(origin, id, def);
      for (const m of joined) before.get(m.watcher)?.delete(labelKey(m.labels));
    }
    for (const [w, keys] of before) for (const labels of keys.values()) w.goneLabels(labels, now);
  }

  hidden(origin: OriginView, _why: HiddenReason): void {
    const ws = this.watched.get(origin);
    if (ws === undefined) return;
    const now = Date.now();
    for (const list of ws.members.values()) for (const m of list) m.watcher.leave(m, now);
    this.watched.delete(origin);
  }

  /** Every watcher sends what is due; a consumer past its pending bound is dropped. */
  flush(nowMs: number): void {
    for (const w of this.watchers) {
      if (!w.due(nowMs)) continue;
      const msg = w.flush(nowMs);
      if (msg === null) continue;
      if (w.sink.pendingBytes() > this.limits.maxPendingBytes) {
        this.m.dropped.inc({ reason: "slow_consumer" });
        this.close(w, `slow consumer: more than ${this.limits.maxPendingBytes} bytes unread (watch.maxPendingBytes)`);
        continue;
      }
      w.sink.send(msg);
      this.m.messages.inc();
    }
  }

  /** Finds what a new watcher matches among the series held now; true when it is over its series bound. */
  private matchExisting(w: Watcher, spec: WatchSpec, index = true): boolean {
    const names = spec.selectors.map((s) => s.metricName);
    const consider = (st: OriginView, id: number): boolean => {
      const def = st.decoded.def(id);
      if (def === undefined || !w.wants(def, st)) return false;
      const m = w.join(st, id, def);
      if (m === null) return true;
      if (index) this.index(st, id, m);
      return false;
    };
    const view = this.view;
    if (view?.seriesNamed !== undefined && names.every((n) => n !== null)) {
      // Only the families of the named metrics (10,000 nodes × 500 series walked whole took ~40 ms a watch).
      for (const name of new Set(names as string[])) {
        for (const { origin, ids } of view.seriesNamed(name)) for (const id of ids) if (origin.decoded.def(id)?.name === name && consider(origin, id)) return true;
      }
      return false;
    }
    for (const st of view?.origins() ?? []) {
      if (!st.up) continue;
      const d = st.decoded;
      for (let id = 0; id < d.capacity; id++) if (consider(st, id)) return true;
    }
    return false;
  }

  private joinId(origin: OriginView, id: number, def: SeriesDef): Member[] {
    const out: Member[] = [];
    const ask = (w: Watcher): void => {
      if (w.closed || !w.wants(def, origin)) return;
      const m = w.join(origin, id, def);
      if (m === null) {
        this.m.dropped.inc({ reason: "too_many_series" });
        this.close(w, `the selectors now match more than ${this.limits.maxSeriesPerWatch} series (watch.maxSeriesPerWatch)`);
        return;
      }
      this.index(origin, id, m);
      out.push(m);
    };
    for (const w of this.byName.get(def.name) ?? []) ask(w);
    for (const w of this.anyName) ask(w);
    return out;
  }

  private index(origin: OriginView, id: number, m: Member): void {
    let ws = this.watched.get(origin);
    if (ws === undefined) this.watched.set(origin, (ws = { decoder: origin.decoded, members: new Map() }));
    let list = ws.members.get(id);
    if (list === undefined) ws.members.set(id, (list = []));
    list.push(m);
  }

  private dropId(ws: Watched, id: number, now: number): void {
    const list = ws.members.get(id);
    if (list === undefined) return;
    for (const m of list) m.watcher.leave(m, now);
    ws.members.delete(id);
  }

  private forget(w: Watcher): void {
    w.closed = true;
    this.watchers.delete(w);
    this.anyName.delete(w);
    for (const [name, set] of this.byName) {
      set.delete(w);
      if (set.size === 0) this.byName.delete(name);
    }
    // Its members leave the index: a walk over its own members (1,600 watchers closing at once
    // must not each walk every watched series).
    for (const m of w.members) {
      const ws = this.watched.get(m.origin);
      const list = ws?.members.get(m.id);
      if (ws === undefined || list === undefined) continue;
      const k = list.indexOf(m);
      if (k >= 0) list.splice(k, 1);
      if (list.length === 0) ws.members.delete(m.id);
      if (ws.members.size === 0) this.watched.delete(m.origin);
    }
  }

  private nameSet(name: string): Set<Watcher> {
    let set = this.byName.get(name);
    if (set === undefined) this.byName.set(name, (set = new Set()));
    return set;
  }
}

function labelKey(labels: Readonly<Record<string, string>>): string {
  return JSON.stringify(labels);
}
