import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { VERSION } from "../core/version.js";
import { UpSchema, type Alive, type Frame, type Up } from "../gen/banyan/v1/uplink_pb.js";
import { decodeDown, uplinkServiceDefinition } from "./uplink-grpc.js";
import type { TreeTls } from "./tree-tls.js";
import { replacedDetails, takenDetails, type Hello } from "./uplink-contract.js";
import type { WireLimits } from "./wire-limits.js";

/** What a stream tells its owner. Events of a stream that was ended or replaced are never delivered. */
export interface ParentStreamEvents {
  /** The parent's first message: it took the Hello. */
  onOpen(): void;
  /** The parent asks these origins for keyframes. */
  onResync(origins: readonly string[]): void;
  /** HTTP/2 flow control lets writes through again. */
  onWritable(): void;
  /** The stream is unusable: error, end, or a Down that does not decode; `replaced`: a newer stream of this node's name took its place at the parent. */
  onFail(reason: string, replaced?: boolean): void;
  /** The parent acked batches (some may still wait). */
  onAcked?(): void;
}

const Client = grpc.makeGenericClientConstructor(uplinkServiceDefinition, "Uplink");

interface SentBatch {
  readonly seq: bigint;
  readonly sentAtMs: number;
  readonly frames: readonly Frame[];
}

/**
 * One gRPC stream to one parent: the Hello, batches numbered by link sequence, the acks that
 * retire them, and the down channel. The gRPC client (its HTTP/2 connection) is kept while the
 * parent's address stays the same. Which parent, and what to do when the stream fails, is the
 * UplinkSession's business.
 */
export class ParentStream {
  private client: grpc.Client | null = null;
  private clientAddress = "";
  private call: grpc.ClientDuplexStream<Up, Buffer> | null = null;
  private opened = false;
  private unacked: SentBatch[] = [];
  /**
   * Batches the parent acked lately (frames only), kept `replay.ms` after their ack and at most
   * `replay.maxFrames` frames: a parent acks a batch when it arrives, so one that dies (power lost)
   * takes with it what it had acked and not yet passed on. After a failure they go again the new
   * way, and the root drops those it already had as duplicates. Measured on emulated hosts: without
   * it, the children of a silent relay whose last frames died in it were repaired only by a
   * keyframe after the root's gap hold (3 × interval): their newest sample at the roots was 4.0 s old.
   */
  private acked: { readonly ackedAtMs: number; readonly frames: readonly Frame[] }[] = [];
  private ackedFrames = 0;
  private linkSeq = 0n;
  private ackedSeq = 0n;
  /** How slow the parent's acks have been lately, ms: the slowest, decaying by 5 % an ack. */
  private slowAckMs = 0;
  /** The stream's own node and epoch (from its Hello): its frames leave the epoch out. */
  private self: { node: string; epoch: bigint } = { node: "", epoch: -1n };
  /** False while HTTP/2 flow control holds writes back. */
  writable = true;

  constructor(
    private readonly limits: WireLimits,
    /** Mutual TLS toward the parent (default: none). */
    private readonly tls?: TreeTls,
    /** What acked batches are kept for a replay after a failure (default: none). */
    private readonly replay: { readonly ms: number; readonly maxFrames: number } = { ms: 0, maxFrames: 0 },
  ) {}

  get isOpen(): boolean {
    return this.call !== null;
  }

  get hasUnacked(): boolean {
    return this.unacked.length > 0;
  }

  /** Whether the parent has acked a batch of this stream (it takes frames, not only the Hello). */
  get hasAcked(): boolean {
    return this.ackedSeq > 0n;
  }

  /**
   * How long a batch may wait for its ack before the parent counts as hung. A parent whose acks
   * have been getting slow (it is overloaded) gets up to 4 × its recent slowest ack, at most
   * 10 × `baseMs`; one that was quick and stops (SIGSTOP) is given up after `baseMs`. Failing over
   * from a parent that is only slow moves its load one level up and costs keyframes: at 20,000
   * nodes on 2 cores, 5,653 failovers in a start that never finished.
   */
  ackTimeoutMs(baseMs: number): number {
    return Math.min(10 * baseMs, Math.max(baseMs, 4 * this.slowAckMs));
  }

  /** The node this stream speaks for (its Hello's). */
  get selfNode(): string {
    return this.self.node;
  }

  /** When the oldest batch still waiting for its ack was sent; null when none waits. */
  get oldestUnackedAtMs(): number | null {
    return this.unacked[0]?.sentAtMs ?? null;
  }

  /** Ends the current stream, if any, and opens one to `address` with `hello`. */
  open(address: string, hello: Hello, events: ParentStreamEvents): void {
    this.end();
    if (this.client === null || this.clientAddress !== address) {
      this.client?.close();
      const secure = this.tls?.channel(address);
      this.client = new Client(address, secure?.credentials ?? grpc.credentials.createInsecure(), {
        ...secure?.options,
        "grpc.max_receive_message_length": this.limits.maxMessageBytes,
        "grpc.max_send_message_length": this.limits.maxMessageBytes,
        "grpc.initial_reconnect_backoff_ms": 100,
        "grpc.max_reconnect_backoff_ms": 1000,
        // A connection of its own, as on a host of its own, when one process runs many nodes (the
        // bench's relay workers): shared, their streams opened on one connection at once, past the
        // few a parent lets a connection hold before their Hello, and the rest were refused.
        "grpc.use_local_subchannel_pool": 1,
      });
      this.clientAddress = address;
    }
    const call = (this.client as unknown as { Stream(): grpc.ClientDuplexStream<Up, Buffer> }).Stream();
    this.call = call;
    this.opened = false;
    this.writable = true;
    call.on("data", (bytes: Buffer) => {
      if (call === this.call) this.onDown(bytes, events);
    });
    call.on("drain", () => {
      if (call !== this.call) return;
      this.writable = true;
      events.onWritable();
    });
    call.on("error", (err: grpc.ServiceError) => {
      const named = (err.code === grpc.status.ABORTED && err.details === replacedDetails(hello.node)) || (err.code === grpc.status.ALREADY_EXISTS && err.details === takenDetails(hello.node));
      if (call === this.call) events.onFail(`stream error: ${err.details || err.message}`, named);
    });
    call.on("end", () => {
      if (call === this.call) events.onFail("parent ended the stream");
    });
    this.self = { node: hello.node, epoch: hello.epoch };
    call.write(create(UpSchema, { msg: { case: "hello", value: { node: hello.node, tree: hello.tree, epoch: hello.epoch, version: VERSION, instance: hello.instance ?? 0n } } }));
  }

  /** Sends one batch; it waits for its ack. False when the stream is closed. */
  send(frames: Frame[], alive: Alive[], nowMs = Date.now()): boolean {
    if (this.call === null) return false;
    this.linkSeq++;
    this.unacked.push({ seq: this.linkSeq, sentAtMs: nowMs, frames });
    const wire = { linkSeq: this.linkSeq, frames: frames.map((f) => this.own(f)), alive: alive.map((a) => this.own(a)) };
    if (!this.call.write(create(UpSchema, { msg: { case: "batch", value: wire } }))) this.writable = false;
    return true;
  }

  /**
   * A frame or alive record of the stream's own node in the Hello's epoch travels with epoch 0: the
   * parent knows it from the Hello (7 of the ~100 bytes a leaf sends per interval). A copy: the
   * queued frame keeps its epoch for a resend on another stream.
   */
  private own<T extends { origin: string; epoch: bigint }>(x: T): T {
    return x.origin === this.self.node && x.epoch === this.self.epoch ? { ...x, epoch: 0n } : x;
  }

  /** The frames the parent acked within the replay window, oldest first (to send again after it went silent); forgotten here. */
  takeBackRecentlyAcked(nowMs = Date.now()): Frame[] {
    this.trimAcked(nowMs);
    const frames = this.acked.flatMap((b) => b.frames);
    this.acked = [];
    this.ackedFrames = 0;
    return frames;
  }

  /** The frames sent but not acked, to be sent again elsewhere; they (and the recently acked ones) are forgotten here. */
  takeBackUnacked(): Frame[] {
    const frames = this.unacked.flatMap((b) => b.frames);
    this.unacked = [];
    this.acked = [];
    this.ackedFrames = 0;
    return frames;
  }

  private keepAcked(frames: readonly Frame[], nowMs: number): void {
    if (this.replay.ms <= 0 || frames.length === 0) return;
    this.acked.push({ ackedAtMs: nowMs, frames });
    this.ackedFrames += frames.length;
    this.trimAcked(nowMs);
  }

  private trimAcked(nowMs: number): void {
    while (this.acked.length > 0 && (nowMs - this.acked[0]!.ackedAtMs > this.replay.ms || this.ackedFrames > this.replay.maxFrames)) {
      this.ackedFrames -= this.acked.shift()!.frames.length;
    }
  }

  /** Cancels the current stream; its late events are ignored. The connection stays for the next. */
  end(): void {
    const call = this.call;
    this.call = null;
    if (call !== null) {
      call.removeAllListeners("data");
      call.on("error", () => undefined);
      call.cancel();
    }
  }

  /** Ends the stream and the connection. */
  close(): void {
    this.end();
    this.client?.close();
    this.client = null;
  }

  private onDown(bytes: Buffer, events: ParentStreamEvents): void {
    let down;
    try {
      down = decodeDown(bytes);
    } catch (err) {
      events.onFail((err as Error).message);
      return;
    }
    if (!this.opened) {
      this.opened = true;
      events.onOpen();
      if (this.call === null) return; // the owner moved on in onOpen
    }
    switch (down.msg.case) {
      case "ack": {
        const seq = down.msg.value.linkSeq;
        if (seq > this.ackedSeq) this.ackedSeq = seq;
        const now = Date.now();
        while (this.unacked.length > 0 && this.unacked[0]!.seq <= seq) {
          const b = this.unacked.shift()!;
          this.slowAckMs = Math.max(now - b.sentAtMs, this.slowAckMs * 0.95);
          this.keepAcked(b.frames, now);
        }
        events.onAcked?.();
        break;
      }
      case "resync":
        events.onResync(down.msg.value.origins);
        break;
      default:
        break;
    }
  }
}
