import type { Counter } from "prom-client";
import { LimitedWarning, type Logger } from "../core/logger.js";
import type { Alive, Frame } from "../gen/banyan/v1/uplink_pb.js";
import { FrameQueue } from "./frame-queue.js";
import type { ParentStream } from "./parent-stream.js";
import type { UplinkOptions } from "./uplink-contract.js";

/** The counters an outbound queue keeps (the uplink's). */
export interface OutboundCounters {
  readonly dropped: Counter;
  readonly frames: Counter;
  readonly bytes: Counter;
  readonly batches: Counter;
}

/**
 * What waits to go up one uplink: a bounded FrameQueue (frames and bytes) that leaves in batches
 * under the message limit. What overflows is dropped, counted and said once per 10 s; the root
 * repairs it (it sees the gap in those origins' sequences and asks for keyframes).
 */
export class OutboundQueue {
  private readonly queue: FrameQueue;
  private readonly overflowed: LimitedWarning;
  /** A batch stays under the message limit with room for the Batch's own fields. */
  private readonly batchBytes: number;

  constructor(
    private readonly opts: Pick<UplinkOptions, "maxQueuedFrames" | "limits">,
    log: Logger,
    private readonly m: OutboundCounters,
  ) {
    this.overflowed = new LimitedWarning(log, "frames toward the parent dropped (the queue overflowed, or a frame could never fit in a message); the root asks for keyframes", 10_000);
    // (Before: 16 MiB of keyframes after a root restart made one batch that grpc-js refused before
    // it left, retried forever while the children were still acked.) The queue holds a few messages' worth.
    this.batchBytes = opts.limits.maxMessageBytes - 1024;
    this.queue = new FrameQueue(
      opts.maxQueuedFrames,
      ({ frames, origins }) => {
        this.m.dropped.inc(frames);
        this.overflowed.warn({ frames, origins: origins.length });
      },
      4 * opts.limits.maxMessageBytes,
    );
  }

  get length(): number {
    return this.queue.length;
  }

  get queuedBytes(): number {
    return this.queue.queuedBytes;
  }

  get isEmpty(): boolean {
    return this.queue.isEmpty;
  }

  push(frames: readonly Frame[], alive: readonly Alive[]): void {
    this.queue.push(frames, alive);
  }

  /** Frames sent but not acked (a failed or abandoned stream's) go back to the head. */
  requeue(back: Parameters<FrameQueue["requeue"]>[0]): void {
    this.queue.requeue(back);
  }

  /**
   * Sends batches while the stream takes them (or regardless of its backpressure, when draining);
   * `mirror` gets each batch too (a move to another root: the stream being left carries them on).
   */
  sendTo(stream: ParentStream, ignoreBackpressure: boolean, mirror?: (frames: Frame[], alive: Alive[]) => void): void {
    while (!this.queue.isEmpty && (stream.writable || ignoreBackpressure)) {
      const { frames, alive } = this.queue.take(this.opts.limits.maxFramesPerBatch, this.batchBytes);
      if (frames.length === 0 && alive.length === 0) break;
      let bytes = 0;
      for (const f of frames) bytes += f.payload.length;
      stream.send(frames, alive);
      mirror?.(frames, alive);
      this.m.frames.inc(frames.length);
      this.m.bytes.inc(bytes);
      this.m.batches.inc();
    }
  }
}
