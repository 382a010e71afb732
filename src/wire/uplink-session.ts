import { randomBytes } from "node:crypto";
import { clientHandshakeRefusal } from "./handshake-refusal.js";
import type { Registry } from "prom-client";
import { Backoff } from "../core/backoff.js";
import { OneShotTimer } from "../core/one-shot-timer.js";
import type { Logger } from "../core/logger.js";
import type { Alive, Frame } from "../gen/banyan/v1/uplink_pb.js";
import { OutboundQueue } from "./outbound-queue.js";
import type { FrameSink } from "./frame-flow.js";
import { FailoverHistory } from "./failover-history.js";
import { OnDemandInterval } from "./on-demand-interval.js";
import { Handover } from "./handover.js";
import { HealWatch } from "./heal-watch.js";
import type { ParentProbe } from "./parent-probe.js";
import { ParentStream } from "./parent-stream.js";
import { uplinkMetrics } from "./uplink-metrics.js";
import { NAMED_TWICE_HOLD_MS, type UplinkHooks, type UplinkOptions, type UplinkState, type UplinkTarget } from "./uplink-contract.js";

/**
 * One node's stream toward its parent, with the topology's fallback chain, as a state machine:
 *
 *   connecting ──(first Down)──► ready
 *   ready | connecting ──(error, end, no ack or answer in time)──► failing-over ──► connecting (next in chain)
 *   … the last in the chain failed ──► backoff ──(capped, jittered delay)──► connecting (the planned parent)
 *   ready, away from the planned parent, and it answered probes for healAfterMs ──► healing ──► connecting (planned)
 *   any ──close()──► closed
 *
 * Frames wait in a bounded OutboundQueue and leave in batches under the message limit every `flushMs`
 * (or at once on `flushNow`). Batches sent but not yet acked go back to the head of the queue when
 * the link fails: the root drops what it already had by epoch and sequence. A deliberate move
 * (healing, a new topology) is make-before-break (Handover): the LEAVE frames go the old way only
 * once the new way carries the node.
 */
export class UplinkSession implements FrameSink {
  private stateNow: UplinkState = "connecting";
  private chain: readonly UplinkTarget[];
  private index = 0;
  private stream: ParentStream;
  /** A deliberate move in flight (make-before-break), or null. */
  private handover: Handover | null = null;
  private readonly queue: OutboundQueue;
  private connectStartedMs = 0;
  private readonly backoff = new Backoff(100, 5000);
  /** This session's process, said in every Hello: its parent tells its reconnects from another process of its name. */
  private readonly instance = randomBytes(8).readBigUInt64BE();
  /** Connect and ack deadlines, flushes, a handover: every quarter of the ack timeout while any is pending. */
  private readonly supervisor: OnDemandInterval;
  /** Armed only while frames wait (240 relays with a 20 ms timer each spent most of their CPU waking up to nothing). */
  private readonly flushTimer = new OneShotTimer(() => this.flush());
  /** After every parent of the chain failed: the next try. */
  private readonly retryTimer = new OneShotTimer(() => this.connect());
  private readonly failoverHistory = new FailoverHistory();
  private readonly healWatch: HealWatch;
  private readonly m: ReturnType<typeof uplinkMetrics>;

  constructor(
    chain: readonly UplinkTarget[],
    private readonly hooks: UplinkHooks,
    private readonly opts: UplinkOptions,
    prober: ParentProbe,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.chain = chain;
    this.stream = new ParentStream(opts.limits, opts.tls, this.replayWindow());
    this.healWatch = new HealWatch(prober, { healAfterMs: opts.healAfterMs, probeIntervalMs: opts.probeIntervalMs, probeTimeoutMs: Math.max(500, opts.connectTimeoutMs) });
    // The gauges read the session when scraped (UplinkView).
    this.m = uplinkMetrics(registry, this);
    this.queue = new OutboundQueue(opts, log, this.m);
    const everyMs = Math.min(250, Math.max(20, Math.floor(opts.ackTimeoutMs / 4)));
    this.supervisor = new OnDemandInterval(everyMs, () => this.supervise(), () => this.watching());
  }

  get state(): UplinkState {
    return this.stateNow;
  }

  get currentTarget(): UplinkTarget {
    return this.chain[this.index]!;
  }

  get plannedTarget(): UplinkTarget {
    return this.chain[0]!;
  }

  /** Failovers since start (the node reports it as a series of its own). */
  get failovers(): number {
    return this.failoverHistory.count;
  }

  get failoversLastHour(): number {
    return this.failoverHistory.lastHour();
  }

  get queuedFrames(): number {
    return this.queue.length;
  }

  get queuedBytes(): number {
    return this.queue.queuedBytes;
  }

  /** Where in the fallback chain the current parent is (0: the planned one). */
  get fallbackPosition(): number {
    return this.index;
  }

  /** Ready or healing: there is a stream to send on. */
  private get attached(): boolean {
    return this.stateNow === "ready" || this.stateNow === "healing";
  }

  start(): void {
    this.connect();
  }

  /** Whether supervise has anything to watch. */
  private watching(): boolean {
    return this.stateNow === "connecting" || this.stream.oldestUnackedAtMs !== null || !this.queue.isEmpty || this.handover !== null;
  }

  /** A new chain (the topology changed): when its planned parent differs, move there now. */
  setChain(chain: readonly UplinkTarget[], reason: string): void {
    if (this.stateNow === "closed" || chain.length === 0) return;
    const current = this.currentTarget;
    this.chain = chain;
    const same = chain[0]!.address === current.address && chain[0]!.name === current.name;
    if (same) {
      this.index = 0;
      return;
    }
    this.index = chain.findIndex((t) => t.address === current.address && t.name === current.name);
    if (this.index < 0) this.index = 0;
    this.moveTo(0, `new chain: ${reason}`);
  }

  /** Queues frames for the next flush, `flushMs` from now. */
  accept(frames: readonly Frame[], alive: readonly Alive[]): void {
    this.enqueue(frames, alive);
    if (this.stateNow === "closed") return;
    this.scheduleFlush();
    this.supervisor.wake();
  }

  /** Queues frames the caller flushes at once (a leaf's tick): no flush timer to clear a ms later (it would still wake the loop). */
  enqueue(frames: readonly Frame[], alive: readonly Alive[]): void {
    if (this.stateNow === "closed") return;
    this.queue.push(frames, alive);
    this.handover?.sent(frames);
  }

  private scheduleFlush(): void {
    if (this.attached) this.flushTimer.arm(this.opts.flushMs);
  }

  /** Sends what is queued now instead of at the next flush tick. */
  flushNow(): void {
    this.flush();
  }

  /** Sends what is queued, waits up to `drainMs` for the acks, then ends the stream. */
  async close(drainMs = 1000): Promise<void> {
    if (this.stateNow === "closed") return;
    if (this.stateNow === "ready") await this.drain(drainMs);
    this.transition("closed", "close");
    this.supervisor.close();
    this.flushTimer.clear();
    this.retryTimer.clear();
    this.stream.close();
    this.handover?.abandon();
    this.handover = null;
    this.healWatch.close();
  }

  private async drain(ms: number): Promise<void> {
    this.flush(true);
    const deadline = Date.now() + ms;
    while (this.stream.hasUnacked && Date.now() < deadline && this.attached) {
      await new Promise((r) => setTimeout(r, 10));
      this.flush(true);
    }
  }

  private connect(): void {
    if (this.stateNow === "closed") return;
    const target = this.currentTarget;
    this.transition("connecting", `to ${target.name} at ${target.address}`);
    this.connectStartedMs = Date.now();
    this.supervisor.wake();
    // Events of a stream that is no longer the current one (left in a move) are not this session's state.
    const stream = this.stream;
    stream.open(target.address, { ...this.hooks.hello(target), instance: this.instance }, {
      onOpen: () => {
        if (stream !== this.stream) return;
        this.backoff.reset();
        this.transition("ready", `to ${this.currentTarget.name}`);
        if (this.handover !== null) this.handover.readyAtMs = Date.now();
        this.watchPlanned();
        this.flush();
      },
      onResync: (origins) => this.hooks.onResync(origins),
      onWritable: () => {
        if (stream === this.stream) this.flush();
      },
      onFail: (reason, replaced) => {
        if (stream !== this.stream) return;
        if (replaced === true) this.namedTwice(target);
        const refusal = clientHandshakeRefusal(reason);
        if (refusal !== null) this.m.handshakes.inc({ reason: refusal });
        this.fail(reason);
      },
      onAcked: () => {
        if (stream === this.stream) this.supervisor.settle();
      },
    });
  }

  private supervise(): void {
    const now = Date.now();
    if (this.stateNow === "connecting" && now - this.connectStartedMs > this.opts.connectTimeoutMs) {
      this.fail(`no answer from ${this.currentTarget.name} within ${this.opts.connectTimeoutMs} ms`);
      return;
    }
    const oldest = this.stream.oldestUnackedAtMs;
    const ackTimeoutMs = this.stream.ackTimeoutMs(this.opts.ackTimeoutMs);
    if (this.attached && oldest !== null && now - oldest > ackTimeoutMs) {
      // Silence (power lost, a hang, a partition): what the parent acked may have died with it.
      this.fail(`no ack from ${this.currentTarget.name} within ${ackTimeoutMs} ms`, true);
      return;
    }
    if (!this.queue.isEmpty) this.scheduleFlush();
    const h = this.handover;
    if (h !== null && this.stateNow === "ready") h.leaveSelfIfDue(now, this.opts.handoverMs ?? 2000, this.stream.hasAcked);
    if (h !== null && this.stateNow === "ready" && h.due(now, this.opts.handoverMs ?? 2000, this.stream.hasAcked)) {
      this.handover = null;
      void h.leave(this.opts.ackTimeoutMs);
    }
  }

  private flush(ignoreBackpressure = false): void {
    this.flushTimer.clear();
    if (!this.attached || !this.stream.isOpen) return;
    const h = this.handover;
    this.queue.sendTo(this.stream, ignoreBackpressure, h !== null && h.mirroring ? (frames, alive) => h.mirror(frames, alive) : undefined);
    // Only the batch just sent to watch: nothing can go wrong before its ack timeout, so the first
    // check then; its ack (a ms later) settles the timer, and an idle node's loop wakes once a tick.
    if (!this.watching()) return;
    const onlyAcks = this.queue.isEmpty && this.handover === null;
    this.supervisor.wake(onlyAcks ? this.stream.ackTimeoutMs(this.opts.ackTimeoutMs) + 1 : undefined);
  }

  /**
   * The current stream failed: the next parent of the chain, or a pause once all of them failed.
   * `replay` (the parent went silent) also sends again what it acked lately; a parent whose stream
   * ended or broke (its process or kernel answered: a restart, a refusal) is not replayed to: a
   * restarted root would take frames older than what its former self had written on (remote_write:
   * out of order, 400).
   */
  private fail(reason: string, replay = false): void {
    if (this.stateNow === "closed" || this.stateNow === "backoff" || this.stateNow === "failing-over") return;
    this.abandonHandover();
    this.takeBackUnacked(replay);
    this.stream.end();
    this.healWatch.stop();
    const failed = this.currentTarget.name;
    if (this.index + 1 < this.chain.length) {
      this.transition("failing-over", `${failed}: ${reason}`);
      this.index++;
      this.failoverHistory.note();
      this.m.failovers.inc();
      this.connect();
      return;
    }
    this.transition("backoff", `${failed}: ${reason}; every parent of the chain failed`);
    this.index = 0;
    this.retryTimer.arm(Math.max(this.backoff.nextDelayMs(), this.healWatch.heldMs()));
  }

  /**
   * Another process with this node's name replaced this stream at its parent, or holds one there
   * alive (the parent refused this one): say so, once per time, and hold still (NAMED_TWICE_HOLD_MS) where the chain takes this node, instead of
   * moving back and replacing the other in turn, once a second, for as long as both run.
   */
  private namedTwice(target: UplinkTarget): void {
    this.healWatch.holdUntil(Date.now() + NAMED_TWICE_HOLD_MS);
    this.m.replaced.inc();
    this.log.error({ parent: target.name }, `another process named like this node holds its stream at ${target.name} (two agents with one name?): no move back there for ${NAMED_TWICE_HOLD_MS / 60_000} minutes`);
  }

  /** A deliberate move (healing, a new chain): the new stream opens while the old one is kept (Handover). */
  private moveTo(index: number, reason: string): void {
    this.healWatch.stop();
    if (this.stateNow === "closed") return;
    if (this.stateNow === "ready" && this.handover === null) {
      this.transition("healing", reason);
      const from = this.currentTarget.root;
      const to = this.chain[index]?.root;
      this.handover = new Handover(this.stream, () => this.hooks.leaving(), from !== undefined && to !== undefined && from !== to);
      this.supervisor.wake();
      this.stream = new ParentStream(this.opts.limits, this.opts.tls, this.replayWindow());
    } else {
      // Not attached anywhere (connecting, backoff) or already moving: nothing to keep visible.
      this.retryTimer.clear();
      this.abandonHandover();
      this.takeBackUnacked();
      this.stream.end();
    }
    this.index = index;
    if (index === 0) this.m.heals.inc();
    this.connect();
  }

  /** The new stream failed during a move: the old one closes without LEAVE, what it had not delivered goes again. */
  private abandonHandover(): void {
    if (this.handover !== null) this.queue.requeue(this.handover.abandon());
    this.handover = null;
  }

  /** Away from the planned parent: watch it, and move back once it has answered for healAfterMs. */
  private watchPlanned(): void {
    if (this.index === 0 || this.stateNow === "closed") return;
    this.healWatch.start(
      this.plannedTarget.address,
      () => this.stateNow === "ready" && this.index > 0,
      (forMs) => this.moveTo(0, `${this.plannedTarget.name} answered for ${forMs} ms`),
    );
  }

  /** The stream's unacked frames back to the queue; after its parent went silent (`replay`) first those it acked lately. */
  private takeBackUnacked(replay = false): void {
    const acked = replay ? this.stream.takeBackRecentlyAcked() : [];
    this.m.replayed.inc(acked.length);
    this.queue.requeue([...acked, ...this.stream.takeBackUnacked()]);
  }

  /** Acked batches are kept two ack timeouts (at most a queue's worth of frames) for a replay after a failure. */
  private replayWindow(): { ms: number; maxFrames: number } {
    return { ms: 2 * this.opts.ackTimeoutMs, maxFrames: this.opts.maxQueuedFrames };
  }

  private transition(to: UplinkState, reason: string): void {
    const from = this.stateNow;
    if (from === to) return;
    this.stateNow = to;
    this.m.transitions.inc({ to });
    const level = to === "backoff" || to === "failing-over" ? "warn" : "info";
    this.log[level]({ from, to, parent: this.currentTarget.name, reason }, `uplink ${from} → ${to}`);
    this.hooks.onState?.(to, this.currentTarget);
  }
}
