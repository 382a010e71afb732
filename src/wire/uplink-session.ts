import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Registry } from "prom-client";
import { Backoff } from "../core/backoff.js";
import type { Logger } from "../core/logger.js";
import { counter, gauge } from "../core/metric-names.js";
import { VERSION } from "../core/version.js";
import { AliveSchema, FrameKind, UpSchema, type Alive, type Frame, type Up } from "../gen/banyan/v1/uplink_pb.js";
import { decodeDown, uplinkServiceDefinition } from "./uplink-grpc.js";
import type { FrameSink } from "./frame-flow.js";
import type { WireLimits } from "./wire-limits.js";

/**
 * One node's stream toward its parent, as a state machine:
 *
 *   connecting ──(first Down)──► ready ──(error, end, no ack in time)──► backoff ──(delay)──► connecting
 *   any ──close()──► closed
 *
 * Frames wait in a bounded queue and leave in batches every `flushMs` (or at once on `flushNow`).
 * When the queue overflows, the oldest DELTA frames are dropped and their origins reported through
 * `onDrop`, so they are repaired by a keyframe, never silently lost. Batches sent but not yet acked
 * go back to the head of the queue when the link fails: the root drops what it already had by
 * sequence number.
 */
export type UplinkState = "connecting" | "ready" | "backoff" | "closed";

export interface UplinkTarget {
  readonly name: string;
  readonly address: string;
}

export interface UplinkHooks {
  /** The Hello of a new stream; the owner bumps its epoch here and queues a keyframe. */
  hello(target: UplinkTarget): { node: string; tree: number; epoch: bigint };
  /** The parent asks these origins (own or below) for keyframes. */
  onResync(origins: readonly string[]): void;
  /** Frames of these origins were dropped on overflow. */
  onDrop(origins: readonly string[]): void;
  /** Every transition, for the owner's status and failover logic. */
  onState?(state: UplinkState, target: UplinkTarget): void;
}

export interface UplinkOptions {
  /** Batches leave at least this often. Default 20 ms: sample-to-root ≈ depth × flush. */
  readonly flushMs: number;
  /** Frames held while the parent is slow or away. */
  readonly maxQueuedFrames: number;
  /** A stream with a batch unacked this long is declared dead (a hung parent). Default 2 × interval. */
  readonly ackTimeoutMs: number;
  /** A stream that gets no answer to its Hello this long is given up. */
  readonly connectTimeoutMs: number;
  readonly limits: WireLimits;
}

const Client = grpc.makeGenericClientConstructor(uplinkServiceDefinition, "Uplink");

interface SentBatch {
  readonly seq: bigint;
  readonly sentAtMs: number;
  readonly frames: readonly Frame[];
}

export class UplinkSession implements FrameSink {
  private stateNow: UplinkState = "connecting";
  private client: grpc.Client | null = null;
  private clientAddress = "";
  private call: grpc.ClientDuplexStream<Up, Buffer> | null = null;
  private writable = true;
  private queue: Frame[] = [];
  private alive = new Map<string, Alive>();
  private unacked: SentBatch[] = [];
  private linkSeq = 0n;
  private connectStartedMs = 0;
  private readonly backoff = new Backoff(100, 5000);
  private flushTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private target: UplinkTarget;
  private readonly m;

  constructor(
    target: UplinkTarget,
    private readonly hooks: UplinkHooks,
    private readonly opts: UplinkOptions,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.target = target;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const self = this;
    this.m = {
      frames: counter(registry, "banyan_uplink_frames_sent_total", "Frames sent to the parent."),
      bytes: counter(registry, "banyan_uplink_payload_bytes_sent_total", "Frame payload bytes sent to the parent."),
      batches: counter(registry, "banyan_uplink_batches_sent_total", "Batches sent to the parent."),
      dropped: counter(registry, "banyan_uplink_dropped_frames_total", "Frames dropped because the queue toward the parent overflowed."),
      transitions: counter(registry, "banyan_uplink_transitions_total", "Uplink state changes.", ["to"] as const),
      queued: gauge(registry, "banyan_uplink_queued_frames", "Frames waiting for the parent.", [], function () {
        this.set(self.queue.length);
      }),
    };
  }

  get state(): UplinkState {
    return this.stateNow;
  }

  get currentTarget(): UplinkTarget {
    return this.target;
  }

  get queuedFrames(): number {
    return this.queue.length;
  }

  start(): void {
    this.flushTimer = setInterval(() => this.tick(), this.opts.flushMs);
    this.flushTimer.unref();
    this.connect();
  }

  /** Moves the stream to another parent (failover, healing, a new topology). */
  retarget(target: UplinkTarget, reason: string): void {
    if (this.stateNow === "closed") return;
    if (target.address === this.target.address && target.name === this.target.name) return;
    this.log.info({ from: this.target.name, to: target.name, reason }, "uplink moves to another parent");
    this.target = target;
    if (this.stateNow === "backoff") {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = null;
      this.connect();
      return;
    }
    this.fail(`retarget: ${reason}`, 0);
  }

  accept(frames: readonly Frame[], alive: readonly Alive[]): void {
    if (this.stateNow === "closed") return;
    for (const f of frames) this.queue.push(f);
    for (const a of alive) this.alive.set(a.origin, a);
    if (this.queue.length > this.opts.maxQueuedFrames) this.shed();
  }

  /** Sends what is queued now instead of at the next flush tick. */
  flushNow(): void {
    this.flush();
  }

  /** Sends what is queued, waits up to `drainMs` for the acks, then ends the stream. */
  async close(drainMs = 1000): Promise<void> {
    if (this.stateNow === "closed") return;
    if (this.stateNow === "ready") {
      this.flush(true);
      const deadline = Date.now() + drainMs;
      while (this.unacked.length > 0 && Date.now() < deadline && this.stateNow === "ready") {
        await new Promise((r) => setTimeout(r, 10));
        this.flush(true);
      }
    }
    this.transition("closed", "close");
    if (this.flushTimer) clearInterval(this.flushTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.endCall();
    this.client?.close();
    this.client = null;
  }

  private connect(): void {
    if (this.stateNow === "closed") return;
    this.transition("connecting", `to ${this.target.name} at ${this.target.address}`);
    if (this.client === null || this.clientAddress !== this.target.address) {
      this.client?.close();
      this.client = new Client(this.target.address, grpc.credentials.createInsecure(), {
        "grpc.max_receive_message_length": this.opts.limits.maxMessageBytes,
        "grpc.max_send_message_length": this.opts.limits.maxMessageBytes,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
      });
      this.clientAddress = this.target.address;
    }
    const call = (this.client as unknown as { Stream(): grpc.ClientDuplexStream<Up, Buffer> }).Stream();
    this.call = call;
    this.writable = true;
    this.connectStartedMs = Date.now();
    const hello = this.hooks.hello(this.target);
    call.on("data", (bytes: Buffer) => {
      if (call === this.call) this.onDown(bytes);
    });
    call.on("drain", () => {
      if (call === this.call) {
        this.writable = true;
        this.flush();
      }
    });
    call.on("error", (err: grpc.ServiceError) => {
      if (call === this.call) this.fail(`stream error: ${err.details || err.message}`);
    });
    call.on("end", () => {
      if (call === this.call) this.fail("parent ended the stream");
    });
    call.write(create(UpSchema, { msg: { case: "hello", value: { node: hello.node, tree: hello.tree, epoch: hello.epoch, version: VERSION } } }));
  }

  private onDown(bytes: Buffer): void {
    let down;
    try {
      down = decodeDown(bytes);
    } catch (err) {
      this.fail((err as Error).message);
      return;
    }
    if (this.stateNow === "connecting") {
      this.backoff.reset();
      this.transition("ready", `to ${this.target.name}`);
    }
    switch (down.msg.case) {
      case "ack": {
        const seq = down.msg.value.linkSeq;
        while (this.unacked.length > 0 && this.unacked[0]!.seq <= seq) this.unacked.shift();
        break;
      }
      case "resync":
        this.hooks.onResync(down.msg.value.origins);
        break;
      default:
        break;
    }
  }

  private tick(): void {
    const now = Date.now();
    if (this.stateNow === "connecting" && now - this.connectStartedMs > this.opts.connectTimeoutMs) {
      this.fail(`no answer from ${this.target.name} within ${this.opts.connectTimeoutMs} ms`);
      return;
    }
    if (this.stateNow === "ready" && this.unacked.length > 0 && now - this.unacked[0]!.sentAtMs > this.opts.ackTimeoutMs) {
      this.fail(`no ack from ${this.target.name} within ${this.opts.ackTimeoutMs} ms`);
      return;
    }
    this.flush();
  }

  private flush(ignoreBackpressure = false): void {
    if (this.stateNow !== "ready" || this.call === null) return;
    while ((this.queue.length > 0 || this.alive.size > 0) && (this.writable || ignoreBackpressure)) {
      const frames = this.queue.splice(0, this.opts.limits.maxFramesPerBatch);
      const room = this.opts.limits.maxFramesPerBatch;
      const alive: Alive[] = [];
      for (const [origin, a] of this.alive) {
        if (alive.length >= room) break;
        alive.push(a);
        this.alive.delete(origin);
      }
      this.linkSeq++;
      let bytes = 0;
      for (const f of frames) bytes += f.payload.length;
      this.unacked.push({ seq: this.linkSeq, sentAtMs: Date.now(), frames });
      const ok = this.call.write(create(UpSchema, { msg: { case: "batch", value: { linkSeq: this.linkSeq, frames, alive } } }));
      this.m.frames.inc(frames.length);
      this.m.bytes.inc(bytes);
      this.m.batches.inc();
      if (!ok) this.writable = false;
    }
  }

  /** Drops the oldest DELTA frames (or, with none left, the oldest keyframes) down to the limit. */
  private shed(): void {
    const excess = this.queue.length - this.opts.maxQueuedFrames;
    const dropped = new Set<string>();
    let n = 0;
    const keep: Frame[] = [];
    for (const f of this.queue) {
      if (n < excess && f.kind === FrameKind.DELTA) {
        n++;
        dropped.add(f.origin);
      } else {
        keep.push(f);
      }
    }
    while (keep.length > this.opts.maxQueuedFrames) {
      dropped.add(keep.shift()!.origin);
      n++;
    }
    this.queue = keep;
    this.m.dropped.inc(n);
    this.log.warn({ frames: n, origins: dropped.size }, "queue toward the parent overflowed: dropped the oldest deltas, resync requested");
    this.hooks.onDrop([...dropped]);
  }

  private fail(reason: string, delayMs?: number): void {
    if (this.stateNow === "closed" || this.stateNow === "backoff") return;
    // What was sent but not acked goes back to the head of the queue; duplicates are dropped upstream.
    const resend = this.unacked.flatMap((b) => b.frames);
    this.unacked = [];
    if (resend.length > 0) this.queue = resend.concat(this.queue);
    if (this.queue.length > this.opts.maxQueuedFrames) this.shed();
    this.endCall();
    this.transition("backoff", reason);
    const delay = delayMs ?? this.backoff.nextDelayMs();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private endCall(): void {
    const call = this.call;
    this.call = null;
    if (call !== null) {
      call.removeAllListeners("data");
      call.on("error", () => undefined);
      call.cancel();
    }
  }

  private transition(to: UplinkState, reason: string): void {
    const from = this.stateNow;
    if (from === to) return;
    this.stateNow = to;
    this.m.transitions.inc({ to });
    const level = to === "backoff" ? "warn" : "info";
    this.log[level]({ from, to, parent: this.target.name, reason }, `uplink ${from} → ${to}`);
    this.hooks.onState?.(to, this.target);
  }
}

/** An alive record: proves an origin alive in a tick where it had nothing to send. */
export function aliveRecord(origin: string, epoch: bigint, seq: bigint, timeMs: number): Alive {
  return create(AliveSchema, { origin, epoch, seq, timeMs: BigInt(timeMs) });
}
