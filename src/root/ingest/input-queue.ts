import type { Alive, Frame } from "../../gen/banyan/v1/uplink_pb.js";
import { SlicedJob } from "../../core/sliced-job.js";

/** A link's batch waiting to be applied, from its frame `next` on. */
export interface WaitingBatch {
  readonly frames: readonly Frame[];
  readonly alive: readonly Alive[];
  readonly from: object | undefined;
  /** The first frame not yet applied. */
  next: number;
  readonly arrivedMs: number;
}

interface Entry extends WaitingBatch {
  readonly bytes: number;
  /** Settles the promise of a batch that came past the bound (its link is paused until then). */
  done: (() => void) | null;
}

/** What a waiting frame or alive record is counted as beyond its payload (objects, origin). */
const ITEM_BYTES = 128;

/**
 * Links' batches a root received and acked but has not applied yet, oldest first, applied a slice
 * at a time by `take` (which applies what fits before the deadline and says whether the batch is
 * done). Bounded: past `maxBytes` waiting, `push` returns a promise that settles once that batch is
 * applied, and the caller reads nothing more from its link until then; so what waits is at most
 * `maxBytes` plus one batch per link.
 */
export class InputQueue {
  private readonly waiting: Entry[] = [];
  private waitingBytes = 0;
  private readonly job: SlicedJob;

  constructor(
    private readonly take: (b: WaitingBatch, deadlineMs: number) => boolean,
    sliceMs: number,
    private readonly maxBytes: number,
  ) {
    this.job = new SlicedJob((deadline) => this.step(deadline), sliceMs);
  }

  get length(): number {
    return this.waiting.length;
  }

  get bytes(): number {
    return this.waitingBytes;
  }

  /** How long the oldest batch has waited, ms (0 when none waits): the root's input backlog. */
  oldestAgeMs(nowMs: number): number {
    return this.waiting.length > 0 ? Math.max(0, nowMs - this.waiting[0]!.arrivedMs) : 0;
  }

  push(frames: readonly Frame[], alive: readonly Alive[], from: object | undefined, next: number, nowMs: number): void | Promise<void> {
    let bytes = alive.length * ITEM_BYTES;
    for (let k = next; k < frames.length; k++) bytes += frames[k]!.payload.length + ITEM_BYTES;
    const b: Entry = { frames, alive, from, next, arrivedMs: nowMs, bytes, done: null };
    this.waiting.push(b);
    this.waitingBytes += bytes;
    this.job.runSoon();
    if (this.waitingBytes <= this.maxBytes) return;
    return new Promise((done) => (b.done = done));
  }

  /** Drops what waits (its links are closing: the nodes' next parent asks for keyframes). */
  stop(): void {
    this.job.cancel();
    for (const b of this.waiting.splice(0)) b.done?.();
    this.waitingBytes = 0;
  }

  private step(deadline: number): boolean {
    while (this.waiting.length > 0) {
      const b = this.waiting[0]!;
      if (!this.take(b, deadline)) return true;
      this.waiting.shift();
      this.waitingBytes -= b.bytes;
      b.done?.();
      if (performance.now() >= deadline) break;
    }
    return this.waiting.length > 0;
  }
}
