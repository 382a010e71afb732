import type { Registry } from "prom-client";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import { SlicedJob } from "../../core/sliced-job.js";
import { NodeChanges, type NodeChange } from "./node-changes.js";
import { FrameKind, type Alive, type Frame } from "../../gen/banyan/v1/uplink_pb.js";
import type { Downlink, FrameSink } from "../../wire/frame-flow.js";
import type { FrameMode } from "../../series/payload.js";
import { decodePayload } from "../../wire/payload-codec.js";
import type { WireLimits } from "../../wire/wire-limits.js";
import type { AggregateEngine } from "./aggregates.js";
import { ExpositionCache } from "../exposition/exposition-cache.js";
import { Liveness } from "./liveness.js";
import { OriginState, type LinkClock } from "./origin-state.js";
import { ReorderBuffer } from "./reorder-buffer.js";
import { RootResyncs, type RootResyncOptions } from "./root-resyncs.js";
import { newIngestTally, rootStoreMetrics } from "./root-store-metrics.js";
import { FrameAdmission } from "./frame-admission.js";
import type { HiddenReason, RootOutput } from "../outputs/root-output.js";
import { OutputFanOut } from "./output-fanout.js";
import type { ClusterQuotas } from "./cluster-quotas.js";
import { InputQueue, type WaitingBatch } from "./input-queue.js";

/** Work the store does at once (a sweep's silent nodes, links' batches) before the loop takes other work. */
const SLICE_MS = 10;


/** The store's settings; the keyframe-request ones are RootResyncs'. */
export interface RootStoreOptions extends RootResyncOptions {
  /** A node silent this long is down and its series leave the page. Default 3 × interval. */
  readonly deadAfterMs: number;
  /** A node down this long is forgotten (its state freed). */
  readonly forgetAfterMs: number;
  readonly limits: WireLimits;
  /** The root's clock (tests drive it). Default Date.now. */
  readonly clock?: () => number;
  /** Heap and external memory past which new state is refused (see MemoryBudget); default 80 % of the heap limit. */
  readonly memoryBudgetBytes?: number | null;
  /** Work done at once taking nodes down or applying links' batches, ms (default SLICE_MS; tests: 0, a slice at every chance). */
  readonly sliceMs?: number;
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
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly liveness: Liveness;
  /** Frames that came ahead of a gap, held for the missing ones (a relay failed over from a slow parent). */
  private readonly reorder: ReorderBuffer<OriginState>;
  private readonly changes: NodeChanges;
  private readonly resyncs: RootResyncs;
  private readonly m: ReturnType<typeof rootStoreMetrics>;
  private readonly tally = newIngestTally();
  private readonly outputs = new OutputFanOut();

  private readonly clock: () => number;
  private readonly sliceMs: number;
  /** Bad payloads from any origin: one line per second at most, however many arrive. */
  private readonly refused: LimitedWarning;
  /** The memory budget and, at a central root, the clusters' limits. */
  private readonly admission: FrameAdmission;
  private eventsFrames: ((f: Frame) => void) | null = null;
  /** Nodes found silent, with when they were last heard then, waiting to be taken off the page (takeDown). */
  private readonly goingDown = new Map<OriginState, number>();
  private readonly downJob: SlicedJob;
  /** Links' batches acked and waiting their turn (acceptSliced). */
  private readonly input: InputQueue;

  constructor(
    private readonly opts: RootStoreOptions,
    private aggregates: AggregateEngine,
    log: Logger,
    registry: Registry,
  ) {
    this.refused = new LimitedWarning(log, "frame refused");
    this.admission = new FrameAdmission(opts.memoryBudgetBytes, new LimitedWarning(log, "over the memory budget: new origins and new series refused until memory is back under it", 10_000));
    this.changes = new NodeChanges(log);
    this.clock = opts.clock ?? Date.now;
    this.sliceMs = opts.sliceMs ?? SLICE_MS;
    this.downJob = new SlicedJob((deadline) => this.takeDown(deadline), this.sliceMs);
    this.input = new InputQueue((b, deadline) => this.takeWaiting(b, deadline), this.sliceMs, 4 * opts.limits.maxMessageBytes);
    this.liveness = new Liveness(opts.deadAfterMs, Math.max(100, Math.min(1000, opts.deadAfterMs / 4)), this.clock());
    this.reorder = new ReorderBuffer(Math.max(1000, 3 * opts.intervalMs));
    this.resyncs = new RootResyncs(opts);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the gauges read the store when scraped
    const self = this;
    this.m = rootStoreMetrics(registry, {
      tally: this.tally,
      get backlogMs() {
        return self.liveness.backlog;
      },
      get resyncsWaiting() {
        return self.resyncs.waiting;
      },
      get resyncRatePerS() {
        return self.resyncs.ratePerS;
      },
      get memory() {
        return self.admission.memory;
      },
      get familyConflicts() {
        return self.cache.conflicting;
      },
      get offPage() {
        return self.cache.offPage;
      },
      get heldBytes() {
        return self.reorder.heldBytes;
      },
      get waitingBytes() {
        return self.input.bytes;
      },
      origins: () => self.origins.values(),
    });
  }

  /** The outputs fed every applied frame and liveness change (see RootOutput). */
  setOutputs(outputs: readonly RootOutput[]): void {
    this.outputs.set(outputs);
  }

  /** A central root's per-cluster limits (see ClusterQuotas). */
  setClusterQuotas(quotas: ClusterQuotas): void {
    this.admission.setClusterQuotas(quotas);
  }

  /** Where EVENTS frames (a cluster root's events, at a central root) go; without a listener they are dropped. */
  onEventsFrame(listener: (f: Frame) => void): void {
    this.eventsFrames = listener;
  }

  /** Replaces the aggregate rules (config reload): every node that is up enrolls afresh. */
  setAggregates(engine: AggregateEngine): void {
    this.aggregates = engine;
    for (const st of this.origins.values()) if (st.up) engine.join(st);
  }

  setDeadAfterMs(ms: number): void {
    this.liveness.setDeadAfterMs(ms);
  }

  /** Told of every keyframe requested (the status page counts them). */
  onResyncRequested(listener: (origin: string) => void): void {
    this.resyncs.onRequested(listener);
  }

  /** Where resync requests go (the child-facing server); set by whoever wires the root. */
  connectDownlink(d: Downlink): void {
    this.resyncs.connect(d);
  }

  start(): void {
    this.sweepTimer = setInterval(() => this.sweep(this.clock()), this.liveness.sweepEveryMs);
    this.sweepTimer.unref();
    this.resyncs.start(this.clock, this.m.resyncs);
  }

  stop(): void {
    this.downJob.cancel();
    this.input.stop();
    this.goingDown.clear();
    this.changes.flush();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.resyncs.stop();
  }

  /** Sends the keyframe requests the budget lets go now (tests drive it; the timer of start() does otherwise). */
  sendResyncs(nowMs: number): void {
    this.resyncs.send(nowMs, this.m.resyncs);
  }

  origin(name: string): OriginState | undefined {
    return this.origins.get(name);
  }

  get originStates(): IterableIterator<OriginState> {
    return this.origins.values();
  }

  get originNames(): IterableIterator<string> {
    return this.origins.keys();
  }

  /** Told when a node comes up here, goes down (silent), or leaves (moved to another parent). */
  onNodeChange(listener: (change: NodeChange, st: OriginState) => void): void {
    this.changes.listen(listener);
  }

  /** Origins waiting for their keyframe request to leave (the resync budget). */
  get resyncsWaiting(): number {
    return this.resyncs.waiting;
  }

  /** A new memory budget (config reload); null: 80 % of the heap limit. */
  setMemoryBudget(bytes: number | null): void {
    this.admission.memory.setBudget(bytes);
  }

  accept(frames: readonly Frame[], alive: readonly Alive[], from?: object): void {
    const now = this.clock();
    const link = this.liveness.linkClock(from, this, now);
    this.takeFrames(frames, 0, Infinity, link, now);
    this.takeAlive(alive, link, now);
  }

  /**
   * accept, for a daemon's links: at most sliceMs (10 ms) of work at once (a keyframe of 500 series
   * is ~1.4 ms: a batch of a hundred held the loop 150 ms). The rest of a batch, and the batches that
   * come meanwhile, wait their turn in arrival order; the link has its ack at once, so a root that is
   * behind is late, not taken for dead by its children. Past 4 × maxMessageBytes waiting, the
   * promise settles when this batch is applied and the link reads nothing more until then (the
   * ChildServer pauses it): its sender sees late acks. How long the oldest batch has waited extends
   * the liveness deadline (the input backlog), so nodes whose frames wait are not taken for silent.
   */
  acceptSliced(frames: readonly Frame[], alive: readonly Alive[], from?: object): void | Promise<void> {
    const now = this.clock();
    if (this.input.length > 0) return this.input.push(frames, alive, from, 0, now);
    const link = this.liveness.linkClock(from, this, now);
    const next = this.takeFrames(frames, 0, performance.now() + this.sliceMs, link, now);
    if (next < frames.length) return this.input.push(frames, alive, from, next, now);
    this.takeAlive(alive, link, now);
  }

  /** Applies what fits of a waiting batch before `deadline`; true once all of it is applied. */
  private takeWaiting(b: WaitingBatch, deadline: number): boolean {
    const now = this.clock();
    const link = this.liveness.linkClock(b.from, this, now);
    b.next = this.takeFrames(b.frames, b.next, deadline, link, now);
    if (b.next < b.frames.length) return false;
    this.takeAlive(b.alive, link, now);
    return true;
  }

  /** Batches received from links and not yet applied (acceptSliced). */
  get inputWaiting(): number {
    return this.input.length;
  }

  /**
   * Applies frames from `k` on, until `deadline` (performance.now() ms) has passed: the clock is
   * read after each keyframe and every 32 frames. Returns the index of the first frame not taken.
   */
  private takeFrames(frames: readonly Frame[], k: number, deadline: number, link: LinkClock, now: number): number {
    while (k < frames.length) {
      const f = frames[k++]!;
      this.tally.payloadBytes += f.payload.length;
      this.liveness.heard(link, Number(f.timeMs), now);
      // A cluster past its bytes per second loses the frame: the gap brings a keyframe later (ClusterQuotas).
      if (!this.admission.bytes(f.origin, f.payload.length, now)) {
        this.drop("cluster_bytes_per_s");
        continue;
      }
      if (f.kind === FrameKind.EVENTS) {
        if (this.eventsFrames !== null) this.eventsFrames(f);
        else this.drop("events_not_taken");
        continue;
      }
      this.applyFrame(f, now, link);
      if (deadline !== Infinity && (f.kind === FrameKind.KEY || (k & 31) === 0) && performance.now() >= deadline) break;
    }
    return k;
  }

  private takeAlive(alive: readonly Alive[], link: LinkClock, now: number): void {
    for (const a of alive) {
      const st = this.stateOf(a.origin, now);
      if (st === null) continue;
      st.link = link;
      this.liveness.heard(link, Number(a.timeMs), now);
      this.seen(st, now);
      if (a.epoch > st.epoch || st.needKey) this.wantKey(st, "gap");
      // Frames up to a.seq exist but have not come (yet): a gap the reorder buffer waits on a little.
      else if (a.epoch === st.epoch && a.seq > st.seq) this.reorder.gapSeen(st, a.seq, now);
      else if (a.epoch === st.epoch && a.seq === st.seq) st.lastSampleMs = Number(a.timeMs);
    }
  }

  /** Applies one frame that came through `link` (a frame held for a gap applies with the one that fills it). */
  private applyFrame(f: Frame, now: number, link: LinkClock): void {
    if (f.kind === FrameKind.LEAVE) {
      this.leave(f);
      return;
    }
    const st = this.stateOf(f.origin, now);
    if (st === null) return;
    st.link = link;
    const key = f.kind === FrameKind.KEY;
    const mode: FrameMode = key ? "key" : f.kind === FrameKind.VALUES ? "values" : "delta";
    if (f.epoch < st.epoch) return this.drop("stale_epoch");
    if (f.epoch === st.epoch && f.seq <= st.seq) return this.drop("duplicate");
    // VALUES and DELTA frames build on the frame before them: after a gap only a KEY frame helps,
    // unless the missing frames are merely late (held a little for them: ReorderBuffer).
    if (!key && (f.epoch > st.epoch || f.seq !== st.seq + 1n || st.needKey)) {
      this.seen(st, now);
      if (f.epoch === st.epoch && !st.needKey && this.reorder.hold(st, f, now)) return this.m.held.inc();
      this.drop("needs_keyframe");
      this.wantKey(st, f.epoch > st.epoch ? "new_epoch" : "gap");
      return;
    }
    let applied;
    const t0 = key ? performance.now() : 0;
    try {
      const payload = decodePayload(f.codec, f.payload, this.opts.limits);
      // Over the memory budget or a cluster's series, nothing new is taken; what an origin already
      // holds keeps flowing, and the refused one is asked for a keyframe later.
      const refused = this.admission.refusal(st, payload, key, now);
      if (refused !== null) {
        this.drop(refused);
        this.wantKey(st, refused);
        return;
      }
      const held = st.seriesCount;
      applied = st.apply(payload, mode);
      this.admission.applied(st, held);
    } catch (err) {
      this.m.decodeErrors.inc();
      this.refused.warn({ origin: f.origin, seq: String(f.seq), err: (err as Error).message });
      st.needKey = true;
      this.wantKey(st, "bad_frame");
      return;
    }
    if (key) this.resyncs.keyApplied(st, now, performance.now() - t0);
    st.epoch = f.epoch;
    st.seq = f.seq;
    st.needKey = false;
    st.lastSampleMs = Number(f.timeMs);
    this.tally[mode]++;
    this.tally.updates += applied.changedCount;
    const lagMs = now - Number(f.timeMs);
    if (lagMs >= 0) this.m.latency.observe(lagMs / 1000);
    const wasUp = st.up;
    this.seen(st, now);
    if (wasUp) {
      this.aggregates.onApplied(st, applied, key);
      this.outputs.applied(st, applied, st.lastSampleMs);
    }
    // A frame held for this gap may follow now (at most the buffer's few per origin, so this recursion is shallow).
    const next = this.reorder.next(st, st.seq);
    if (next !== undefined) this.applyFrame(next, now, link);
  }

  /** The origin moved to another parent: stop exposing it here, unless newer frames already came. */
  private leave(f: Frame): void {
    const st = this.origins.get(f.origin);
    if (st === undefined || !st.up) return;
    if (f.epoch < st.epoch || (f.epoch === st.epoch && f.seq < st.seq)) return this.drop("stale_leave");
    this.hide(st, "left");
    this.m.left.inc();
    this.changes.note("left", st);
  }

  /** The origin's state, made on its first frame; null when its cluster may have no more origins here. */
  private stateOf(name: string, now: number): OriginState | null {
    let st = this.origins.get(name);
    if (st === undefined) {
      if (!this.admission.newOrigin(name, now)) {
        this.drop("cluster_origins");
        return null;
      }
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
      this.outputs.shown(st);
      this.changes.note("up", st);
    }
  }

  /**
   * An origin's series leave the page, the aggregates and the outputs (it went down, or moved away).
   * It comes back only from a keyframe: frames after a silence or a stay at another root have a gap
   * nobody will fill (without this, its old values came back as current, 20 s old after a 30 s
   * partition on emulated hosts, and its frames were held 3 × interval for a gap before the
   * keyframe was asked).
   */
  private hide(st: OriginState, why: HiddenReason): void {
    st.needKey = true;
    st.setVisible(false);
    this.aggregates.drop(st);
    this.outputs.hidden(st, why);
  }

  /** The origin needs a keyframe: the request leaves when the budget lets it (RootResyncs). */
  private wantKey(st: OriginState, reason: string): void {
    st.needKey = true;
    if (!this.resyncs.need(st, reason)) this.drop("resync_backlog_full");
  }

  private drop(reason: string): void {
    this.m.dropped.inc({ reason });
  }

  /** Marks silent nodes down (see Liveness), asks for keyframes where a gap stayed open, and forgets long-gone nodes. */
  sweep(now: number): void {
    this.admission.memory.sample();
    const { stalled, down } = this.liveness.sweep(now, this.origins.values(), this.input.oldestAgeMs(now));
    if (stalled) this.m.sweepsStalled.inc();
    for (const st of down) this.goingDown.set(st, st.lastSeenMs);
    this.downJob.runNow();
    for (const st of this.reorder.expired(now)) {
      this.drop("gap_not_filled");
      this.wantKey(st, "gap");
    }
    for (const [name, st] of this.origins) {
      if (st.up || now - st.lastSeenMs <= this.opts.forgetAfterMs) continue;
      this.resyncs.forget(name);
      this.admission.forgotten(st);
      this.reorder.clear(st);
      st.clear();
      this.origins.delete(name);
    }
    this.changes.flush();
  }

  /**
   * Takes the nodes the sweep found silent off the page, a slice of sliceMs at a time: a
   * node's series leave hundreds of families (~0.1 ms a node of node_exporter's 500 series), and a
   * sweep that found a whole subtree silent held the loop for half a second. One heard again before
   * its turn stays up.
   */
  private takeDown(deadline: number): boolean {
    for (const [st, seenMs] of this.goingDown) {
      this.goingDown.delete(st);
      if (!st.up || st.lastSeenMs !== seenMs) continue;
      this.hide(st, "down");
      this.changes.note("down", st);
      this.m.down.inc();
      if (this.goingDown.size > 0 && performance.now() >= deadline) return true;
    }
    this.changes.flush();
    return false;
  }

  /** The backlog the last sweep allowed for, ms (0 when the root keeps up). */
  get backlog(): number {
    return this.liveness.backlog;
  }
}
