import type { Registry } from "prom-client";
import { Histogram } from "prom-client";
import { EventSummary, LimitedWarning, type Logger } from "../core/logger.js";
import { counter, gauge } from "../core/metric-names.js";
import { FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { Downlink, FrameSink } from "../wire/frame-flow.js";
import type { FrameMode } from "../series/payload.js";
import { decodePayload } from "../wire/payload-codec.js";
import { ResyncBudget } from "../wire/resync-budget.js";
import type { WireLimits } from "../wire/wire-limits.js";
import type { AggregateEngine } from "./aggregates.js";
import { ExpositionCache } from "./exposition-cache.js";
import { IngestLag } from "./ingest-lag.js";
import { OriginState, type LinkClock } from "./origin-state.js";

export interface RootStoreOptions {
  /** A node silent this long is down and its series leave the page. Default 3 × interval. */
  readonly deadAfterMs: number;
  /** A node down this long is forgotten (its state freed). */
  readonly forgetAfterMs: number;
  /** The trees' sampling interval: a keyframe asked for should arrive within a few of them. */
  readonly intervalMs: number;
  /**
   * An origin that needs a keyframe again soon after one waits at least this long, doubling each
   * time up to keyframeIntervalMs: a flapping origin costs about one keyframe per keyframe interval.
   */
  readonly resyncIntervalMs: number;
  readonly keyframeIntervalMs: number;
  /** Keyframe requests per second; null: derived from what a keyframe costs this root (a quarter of a core). */
  readonly resyncPerS: number | null;
  /** Requests that may leave at once. */
  readonly resyncBurst: number;
  readonly limits: WireLimits;
  /** The root's clock (tests drive it). Default Date.now. */
  readonly clock?: () => number;
}

/** The share of a core a root spends on keyframes it asked for, when no rate is configured. */
const RESYNC_CORE_SHARE = 0.25;

/**
 * The root's FrameSink: one OriginState per node. Frames of an older epoch, or already seen, are
 * dropped (they arrive twice during a failover); a gap in an origin's sequence, a DELTA without its
 * keyframe, or a bad payload asks the origin for a keyframe through the down channel. A bad frame
 * from one origin never touches the others.
 */
export class RootStore implements FrameSink {
  readonly cache = new ExpositionCache();
  private readonly origins = new Map<string, OriginState>();
  /** Per child link (the ChildServer's link object): what it delivered, and when. Gone with the link. */
  private readonly links = new WeakMap<object, LinkClock>();
  private downlink: Downlink | null = null;
  private resyncListener: (origin: string) => void = () => undefined;
  private sweepTimer: NodeJS.Timeout | null = null;
  private sweepEveryMs = 1000;
  private lastSweepMs = 0;
  /** The sweep window's ingest lag (see IngestLag), and the backlog the last sweep allowed for. */
  private readonly lag = new IngestLag();
  private backlogMs = 0;
  private readonly downs: EventSummary;
  private readonly ups: EventSummary;
  private readonly lefts: EventSummary;
  private resyncTimer: NodeJS.Timeout | null = null;
  private readonly budget: ResyncBudget;
  /** What applying one KEY frame costs here, µs (moving average): the default resync rate follows it. */
  private keyCostUs = 0;
  private readonly m;

  private deadAfterMs: number;
  private readonly clock: () => number;
  /** Bad payloads from any origin: one line per second at most, however many arrive. */
  private readonly refused: LimitedWarning;

  constructor(
    private readonly opts: RootStoreOptions,
    private aggregates: AggregateEngine,
    log: Logger,
    registry: Registry,
  ) {
    this.refused = new LimitedWarning(log, "frame refused");
    this.downs = new EventSummary(log, "nodes down (silent past deadAfterMs)", "warn");
    this.ups = new EventSummary(log, "nodes up");
    this.lefts = new EventSummary(log, "nodes left this root for another parent");
    this.deadAfterMs = opts.deadAfterMs;
    this.clock = opts.clock ?? Date.now;
    this.lastSweepMs = this.clock();
    this.budget = new ResyncBudget({
      // Until a keyframe has been timed: 500 a second (a 500-series keyframe costs ~0.5 ms here).
      perS: opts.resyncPerS ?? 500,
      burst: opts.resyncBurst,
      inFlightMs: Math.max(2000, 3 * opts.intervalMs),
      maxWaiting: 1_000_000,
    });
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const self = this;
    this.m = {
      frames: counter(registry, "banyan_root_frames_applied_total", "Frames applied to the store.", ["kind"] as const),
      bytes: counter(registry, "banyan_root_payload_bytes_total", "Frame payload bytes received (compressed, as on the wire)."),
      decodedBytes: counter(registry, "banyan_root_series_updates_total", "Series values updated by frames."),
      dropped: counter(registry, "banyan_root_frames_dropped_total", "Frames dropped.", ["reason"] as const),
      decodeErrors: counter(registry, "banyan_root_decode_errors_total", "Frames whose payload could not be decoded."),
      resyncs: counter(registry, "banyan_root_resyncs_requested_total", "Keyframes requested from origins.", ["reason"] as const),
      left: counter(registry, "banyan_root_nodes_left_total", "Nodes that announced they moved to another parent (their series left this root at once)."),
      down: counter(registry, "banyan_root_nodes_down_total", "Times a node that was up was marked down (silent past deadAfterMs plus the root's backlog)."),
      sweepsStalled: counter(registry, "banyan_root_sweeps_stalled_total", "Liveness sweeps that ran late (the event loop was blocked) and so marked no node down."),
      backlog: gauge(registry, "banyan_root_ingest_backlog_seconds", "How far behind its input the root was at the last sweep (added to deadAfterMs).", [], function () {
        this.set(self.backlogMs / 1000);
      }),
      resyncWaiting: gauge(registry, "banyan_root_resyncs_waiting", "Origins waiting for their keyframe request to leave (the resync budget).", [], function () {
        this.set(self.budget.waitingCount);
      }),
      resyncRate: gauge(registry, "banyan_root_resync_rate_per_second", "Keyframe requests this root sends at most per second.", [], function () {
        this.set(self.budget.ratePerS);
      }),
      nodesUp: gauge(registry, "banyan_root_nodes_up", "Origins currently up at this root.", [], function () {
        let n = 0;
        for (const o of self.origins.values()) if (o.up) n++;
        this.set(n);
      }),
      series: gauge(registry, "banyan_root_series", "Series held for origins that are up.", [], function () {
        let n = 0;
        for (const o of self.origins.values()) if (o.up) n += o.seriesCount;
        this.set(n);
      }),
      latency: new Histogram({
        name: "banyan_root_frame_latency_seconds",
        help: "Time from sampling at the origin to applying at the root.",
        // Fine enough for the bench to read p50/p99 off it.
        buckets: [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
        registers: [registry],
      }),
    };
  }

  /** Replaces the aggregate rules (config reload): every node that is up enrolls afresh. */
  setAggregates(engine: AggregateEngine): void {
    this.aggregates = engine;
    for (const st of this.origins.values()) if (st.up) engine.join(st);
  }

  setDeadAfterMs(ms: number): void {
    this.deadAfterMs = ms;
  }

  /** Told of every keyframe requested (the status page counts them). */
  onResyncRequested(listener: (origin: string) => void): void {
    this.resyncListener = listener;
  }

  /** Where resync requests go (the child-facing server); set by whoever wires the root. */
  connectDownlink(d: Downlink): void {
    this.downlink = d;
  }

  start(): void {
    this.sweepEveryMs = Math.max(100, Math.min(1000, this.deadAfterMs / 4));
    this.lastSweepMs = this.clock();
    this.sweepTimer = setInterval(() => this.sweep(this.clock()), this.sweepEveryMs);
    this.sweepTimer.unref();
    this.resyncTimer = setInterval(() => this.sendResyncs(this.clock()), 100);
    this.resyncTimer.unref();
  }

  stop(): void {
    this.flushLogs();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.resyncTimer) clearInterval(this.resyncTimer);
  }

  /** Sends the keyframe requests the budget lets go now. */
  sendResyncs(nowMs: number): void {
    const due = this.budget.take(nowMs);
    if (due.length === 0) return;
    const origins: string[] = [];
    for (const { origin, reason } of due) {
      this.m.resyncs.inc({ reason });
      this.resyncListener(origin);
      origins.push(origin);
    }
    this.downlink?.resync(origins);
  }

  origin(name: string): OriginState | undefined {
    return this.origins.get(name);
  }

  get originNames(): IterableIterator<string> {
    return this.origins.keys();
  }

  accept(frames: readonly Frame[], alive: readonly Alive[], from?: object): void {
    const now = this.clock();
    const link = this.linkClock(from, now);
    for (const f of frames) {
      this.applyFrame(f, now);
      const t = Number(f.timeMs);
      if (t > link.watermarkMs) link.watermarkMs = t;
      const st = this.origins.get(f.origin);
      if (st !== undefined) st.link = link;
    }
    for (const a of alive) {
      const st = this.stateOf(a.origin);
      st.link = link;
      const t = Number(a.timeMs);
      if (t > link.watermarkMs) link.watermarkMs = t;
      this.seen(st, now);
      if (a.epoch > st.epoch || (a.epoch === st.epoch && a.seq > st.seq) || st.needKey) this.wantKey(st, "gap");
      else if (a.epoch === st.epoch && a.seq === st.seq) st.lastSampleMs = Number(a.timeMs);
      this.lag.observe(now - Number(a.timeMs));
    }
  }

  private applyFrame(f: Frame, now: number): void {
    if (f.kind === FrameKind.LEAVE) {
      this.leave(f);
      return;
    }
    const st = this.stateOf(f.origin);
    this.m.bytes.inc(f.payload.length);
    const key = f.kind === FrameKind.KEY;
    const mode: FrameMode = key ? "key" : f.kind === FrameKind.VALUES ? "values" : "delta";
    if (f.epoch < st.epoch) return this.drop("stale_epoch");
    if (f.epoch === st.epoch && f.seq <= st.seq) return this.drop("duplicate");
    // VALUES and DELTA frames build on the frame before them: after a gap only a KEY frame helps.
    if (!key && (f.epoch > st.epoch || f.seq !== st.seq + 1n || st.needKey)) {
      this.drop("needs_keyframe");
      this.seen(st, now);
      this.wantKey(st, f.epoch > st.epoch ? "new_epoch" : "gap");
      return;
    }
    let applied;
    const t0 = key ? performance.now() : 0;
    try {
      applied = st.apply(decodePayload(f.codec, f.payload, this.opts.limits), mode);
    } catch (err) {
      this.m.decodeErrors.inc();
      this.refused.warn({ origin: f.origin, seq: String(f.seq), err: (err as Error).message });
      st.needKey = true;
      this.wantKey(st, "bad_frame");
      return;
    }
    if (key) this.keyApplied(st, now, performance.now() - t0);
    st.epoch = f.epoch;
    st.seq = f.seq;
    st.needKey = false;
    st.lastSampleMs = Number(f.timeMs);
    this.m.frames.inc({ kind: mode });
    this.m.decodedBytes.inc(applied.changed.length);
    const lagMs = now - Number(f.timeMs);
    if (lagMs >= 0) this.m.latency.observe(lagMs / 1000);
    this.lag.observe(lagMs);
    const wasUp = st.up;
    this.seen(st, now);
    if (wasUp) this.aggregates.onApplied(st, applied, key);
  }

  /** The clock of the link a batch came through (one for everything that names no link). */
  private linkClock(from: object | undefined, now: number): LinkClock {
    const key = from ?? this;
    let c = this.links.get(key);
    if (c === undefined) this.links.set(key, (c = { watermarkMs: 0, arrivalMs: now }));
    c.arrivalMs = now;
    return c;
  }

  /** The origin moved to another parent: stop exposing it here, unless newer frames already came. */
  private leave(f: Frame): void {
    const st = this.origins.get(f.origin);
    if (st === undefined || !st.up) return;
    if (f.epoch < st.epoch || (f.epoch === st.epoch && f.seq < st.seq)) return this.drop("stale_leave");
    st.setVisible(false);
    this.aggregates.drop(st);
    this.m.left.inc();
    this.lefts.note(f.origin);
  }

  private stateOf(name: string): OriginState {
    let st = this.origins.get(name);
    if (st === undefined) {
      st = new OriginState(name, this.cache, this.opts.limits);
      this.origins.set(name, st);
    }
    return st;
  }

  private seen(st: OriginState, now: number): void {
    st.lastSeenMs = now;
    if (!st.up && !st.needKey) {
      st.setVisible(true);
      this.aggregates.join(st);
      this.ups.note(st.name);
    }
  }

  /** The origin needs a keyframe: the budget sends the request when it may (see ResyncBudget). */
  private wantKey(st: OriginState, reason: string): void {
    st.needKey = true;
    if (!this.budget.need(st.name, reason, st.lastKeyMs + st.keyGapMs)) this.drop("resync_backlog_full");
  }

  /**
   * A keyframe arrived: no request for it is pending any more. One soon after the last (a flapping
   * origin) doubles the wait before the next request; a quiet keyframe interval resets it. The
   * default request rate follows what keyframes cost here.
   */
  private keyApplied(st: OriginState, now: number, ms: number): void {
    const o = this.opts;
    st.keyGapMs = now - st.lastKeyMs < o.keyframeIntervalMs ? Math.min(o.keyframeIntervalMs, Math.max(o.resyncIntervalMs, 2 * st.keyGapMs)) : 0;
    st.lastKeyMs = now;
    this.budget.satisfied(st.name);
    this.keyCostUs = this.keyCostUs === 0 ? ms * 1000 : 0.95 * this.keyCostUs + 0.05 * ms * 1000;
    if (o.resyncPerS === null && this.keyCostUs > 0) this.budget.setRate(Math.max(50, Math.min(20_000, (RESYNC_CORE_SHARE * 1e6) / this.keyCostUs)));
  }

  private drop(reason: string): void {
    this.m.dropped.inc({ reason });
  }

  /**
   * Marks silent nodes down (their series leave the page) and forgets long-gone ones. Silence is
   * judged against what the root could hear, and on what the node sent:
   * - a sweep that runs late (the event loop was blocked, input waiting unread) marks nobody down,
   *   and the time it was held up does not count as anyone's silence;
   * - the backlog the root is working through (the median age of the samples it applied since the
   *   last sweep) extends deadAfterMs;
   * - a node is down only when it is also behind the link it came through: that link delivered
   *   samples deadAfterMs newer than the node's last (others behind it are heard, it is not), or
   *   delivered nothing at all. A congested link (a relay's queue full of keyframes) delivers old
   *   samples late, for every node behind it alike: later values, not nodes marked down.
   * A root or a link that falls behind shows values later; it never declares live nodes down and
   * asks them for keyframes (that was the collapse: 73,153 `node down` lines at 20,000 nodes).
   */
  sweep(now: number): void {
    const lateMs = now - this.lastSweepMs - this.sweepEveryMs;
    this.lastSweepMs = now;
    const stalled = lateMs > Math.max(50, this.sweepEveryMs / 2);
    // The time the event loop was held up (a long task, a GC pause) the root could hear nobody:
    // it does not count as anyone's silence.
    if (lateMs > 20) for (const st of this.origins.values()) st.lastSeenMs = Math.min(now, st.lastSeenMs + lateMs);
    const median = this.lag.medianMs();
    this.lag.reset();
    this.backlogMs = median === null ? 0 : Math.max(0, median - this.deadAfterMs / 4);
    if (stalled) this.m.sweepsStalled.inc();
    const deadline = this.deadAfterMs + this.backlogMs;
    for (const [name, st] of this.origins) {
      const silentMs = now - st.lastSeenMs;
      if (st.up && silentMs > deadline && !stalled && this.behindItsLink(st, now, deadline)) {
        st.setVisible(false);
        this.aggregates.drop(st);
        this.downs.note(name);
        this.m.down.inc();
      }
      if (!st.up && silentMs > this.opts.forgetAfterMs) {
        this.budget.forget(name);
        st.clear();
        this.origins.delete(name);
      }
    }
    this.flushLogs();
  }

  private behindItsLink(st: OriginState, now: number, deadline: number): boolean {
    const l = st.link;
    return l === null || now - l.arrivalMs > deadline || l.watermarkMs - st.lastSampleMs > this.deadAfterMs;
  }

  /** The backlog the last sweep allowed for, ms (0 when the root keeps up). */
  get backlog(): number {
    return this.backlogMs;
  }

  private flushLogs(): void {
    this.downs.flush();
    this.ups.flush();
    this.lefts.flush();
  }
}
