import type { Registry } from "prom-client";
import { Histogram } from "prom-client";
import { LimitedWarning, type Logger } from "../core/logger.js";
import { counter, gauge } from "../core/metric-names.js";
import { FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { Downlink, FrameSink } from "../wire/frame-flow.js";
import type { FrameMode } from "../series/payload.js";
import { decodePayload } from "../wire/payload-codec.js";
import type { WireLimits } from "../wire/wire-limits.js";
import type { AggregateEngine } from "./aggregates.js";
import { ExpositionCache } from "./exposition-cache.js";
import { OriginState } from "./origin-state.js";

export interface RootStoreOptions {
  /** A node silent this long is down and its series leave the page. Default 3 × interval. */
  readonly deadAfterMs: number;
  /** A node down this long is forgotten (its state freed). */
  readonly forgetAfterMs: number;
  /** At most one resync request per origin this often: a keyframe needs a tick to arrive. */
  readonly resyncIntervalMs: number;
  readonly limits: WireLimits;
}

/**
 * The root's FrameSink: one OriginState per node. Frames of an older epoch, or already seen, are
 * dropped (they arrive twice during a failover); a gap in an origin's sequence, a DELTA without its
 * keyframe, or a bad payload asks the origin for a keyframe through the down channel. A bad frame
 * from one origin never touches the others.
 */
export class RootStore implements FrameSink {
  readonly cache = new ExpositionCache();
  private readonly origins = new Map<string, OriginState>();
  private downlink: Downlink | null = null;
  private resyncListener: (origin: string) => void = () => undefined;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly m;

  private deadAfterMs: number;
  /** Bad payloads from any origin: one line per second at most, however many arrive. */
  private readonly refused: LimitedWarning;

  constructor(
    private readonly opts: RootStoreOptions,
    private aggregates: AggregateEngine,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.refused = new LimitedWarning(log, "frame refused");
    this.deadAfterMs = opts.deadAfterMs;
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
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), Math.max(100, Math.min(1000, this.deadAfterMs / 4)));
    this.sweepTimer.unref();
  }

  stop(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
  }

  origin(name: string): OriginState | undefined {
    return this.origins.get(name);
  }

  get originNames(): IterableIterator<string> {
    return this.origins.keys();
  }

  accept(frames: readonly Frame[], alive: readonly Alive[]): void {
    const now = Date.now();
    const resync: string[] = [];
    for (const f of frames) this.applyFrame(f, now, resync);
    for (const a of alive) {
      const st = this.stateOf(a.origin);
      this.seen(st, now);
      if (a.epoch > st.epoch || (a.epoch === st.epoch && a.seq > st.seq) || st.needKey) this.wantKey(st, now, "gap", resync);
      else if (a.epoch === st.epoch && a.seq === st.seq) st.lastSampleMs = Number(a.timeMs);
    }
    if (resync.length > 0 && this.downlink !== null) this.downlink.resync(resync);
  }

  private applyFrame(f: Frame, now: number, resync: string[]): void {
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
      this.wantKey(st, now, f.epoch > st.epoch ? "new_epoch" : "gap", resync);
      return;
    }
    let applied;
    try {
      applied = st.apply(decodePayload(f.codec, f.payload, this.opts.limits), mode);
    } catch (err) {
      this.m.decodeErrors.inc();
      this.refused.warn({ origin: f.origin, seq: String(f.seq), err: (err as Error).message });
      st.needKey = true;
      this.wantKey(st, now, "bad_frame", resync);
      return;
    }
    st.epoch = f.epoch;
    st.seq = f.seq;
    st.needKey = false;
    st.lastSampleMs = Number(f.timeMs);
    this.m.frames.inc({ kind: mode });
    this.m.decodedBytes.inc(applied.changed.length);
    const lagMs = now - Number(f.timeMs);
    if (lagMs >= 0) this.m.latency.observe(lagMs / 1000);
    const wasUp = st.up;
    this.seen(st, now);
    if (wasUp) this.aggregates.onApplied(st, applied, key);
  }

  /** The origin moved to another parent: stop exposing it here, unless newer frames already came. */
  private leave(f: Frame): void {
    const st = this.origins.get(f.origin);
    if (st === undefined || !st.up) return;
    if (f.epoch < st.epoch || (f.epoch === st.epoch && f.seq < st.seq)) return this.drop("stale_leave");
    st.setVisible(false);
    this.aggregates.drop(st);
    this.m.left.inc();
    this.log.info({ origin: f.origin }, "node left this root for another parent");
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
      this.log.info({ origin: st.name }, "node up");
    }
  }

  private wantKey(st: OriginState, now: number, reason: string, out: string[]): void {
    st.needKey = true;
    if (now - st.lastResyncMs < this.opts.resyncIntervalMs) return;
    st.lastResyncMs = now;
    this.m.resyncs.inc({ reason });
    this.resyncListener(st.name);
    out.push(st.name);
  }

  private drop(reason: string): void {
    this.m.dropped.inc({ reason });
  }

  /** Marks silent nodes down (their series leave the page) and forgets long-gone ones. */
  sweep(now: number): void {
    for (const [name, st] of this.origins) {
      const silentMs = now - st.lastSeenMs;
      if (st.up && silentMs > this.deadAfterMs) {
        st.setVisible(false);
        this.aggregates.drop(st);
        this.log.warn({ origin: name, silentMs }, "node down");
      }
      if (!st.up && silentMs > this.opts.forgetAfterMs) {
        st.clear();
        this.origins.delete(name);
      }
    }
  }
}
