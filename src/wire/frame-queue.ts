import { FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";

/**
 * Protobuf bytes of a frame in a Batch beyond its payload and origin, at most, for a frame that
 * passes the envelope check: 7 tags, the origin's length (2), epoch, seq and time (10 each: a peer
 * may send any 64-bit value), kind and codec (1 each: checked), the payload's length (4, up to
 * 8 MiB), and the frame's own tag and length in the Batch (1 + 4). 50 (was 48: a frame of extreme
 * fields was a byte or two over, found by the property test).
 */
const FRAME_OVERHEAD_BYTES = 50;
/** An alive record beyond its origin, likewise. */
const ALIVE_OVERHEAD_BYTES = 40;

/** What a frame costs inside a Batch message, at most. */
export function frameWireBytes(f: Frame): number {
  return f.payload.length + f.origin.length + FRAME_OVERHEAD_BYTES;
}

/**
 * What waits to go up one link: frames in order, and the latest alive record of each origin.
 * Bounded in frames and in bytes: past either bound the oldest DELTA and VALUES frames go first
 * (then, with none left, the oldest keyframes); what was shed is counted and reported. Loss is
 * repaired, never silently absorbed: the root sees the gap in those origins' sequences and asks
 * for keyframes.
 */
export class FrameQueue {
  private frames: Frame[] = [];
  private bytes = 0;
  private readonly alive = new Map<string, Alive>();

  constructor(
    private readonly max: number,
    private readonly onShed: (dropped: { frames: number; origins: string[] }) => void,
    /** Bytes of frames held at most (a parent that stalls while keyframes pour in). */
    private readonly maxBytes = Infinity,
  ) {}

  get length(): number {
    return this.frames.length;
  }

  get queuedBytes(): number {
    return this.bytes;
  }

  get isEmpty(): boolean {
    return this.frames.length === 0 && this.alive.size === 0;
  }

  push(frames: readonly Frame[], alive: readonly Alive[]): void {
    for (const f of frames) {
      this.frames.push(f);
      this.bytes += frameWireBytes(f);
    }
    for (const a of alive) this.alive.set(a.origin, a);
    this.shedPastMax();
  }

  /**
   * One batch: frames in order, then alive records, at most `maxItems` of them and at most
   * `maxBytes` as a message. A frame that could never fit in a message is dropped here and its
   * origin reported, so a keyframe too big for the link cannot block the queue forever.
   */
  take(maxItems: number, maxBytes = Infinity): { frames: Frame[]; alive: Alive[] } {
    let n = 0;
    let size = 0;
    const tooBig = new Set<string>();
    let dropped = 0;
    while (n < this.frames.length && n < maxItems) {
      const cost = frameWireBytes(this.frames[n]!);
      if (cost > maxBytes) {
        const [f] = this.frames.splice(n, 1);
        this.bytes -= cost;
        tooBig.add(f!.origin);
        dropped++;
        continue;
      }
      if (size + cost > maxBytes) break;
      size += cost;
      n++;
    }
    const frames = this.frames.splice(0, n);
    this.bytes -= size;
    const alive: Alive[] = [];
    for (const [origin, a] of this.alive) {
      const cost = origin.length + ALIVE_OVERHEAD_BYTES;
      if (frames.length + alive.length >= maxItems || size + cost > maxBytes) break;
      size += cost;
      alive.push(a);
      this.alive.delete(origin);
    }
    if (dropped > 0) this.onShed({ frames: dropped, origins: [...tooBig] });
    return { frames, alive };
  }

  /** Frames sent but not acked go back to the head (duplicates are dropped upstream by sequence); LEAVE frames do not. */
  requeue(frames: readonly Frame[]): void {
    const back = frames.filter((f) => f.kind !== FrameKind.LEAVE);
    if (back.length === 0) return;
    for (const f of back) this.bytes += frameWireBytes(f);
    this.frames = back.concat(this.frames);
    this.shedPastMax();
  }

  private shedPastMax(): void {
    if (this.frames.length <= this.max && this.bytes <= this.maxBytes) return;
    const excess = this.frames.length - this.max;
    const origins = new Set<string>();
    let n = 0;
    let bytes = this.bytes;
    const keep: Frame[] = [];
    // Deltas and values frames first: a keyframe repairs them, while a lost keyframe costs a resync round trip.
    for (const f of this.frames) {
      if ((n < excess || bytes > this.maxBytes) && (f.kind === FrameKind.DELTA || f.kind === FrameKind.VALUES)) {
        n++;
        bytes -= frameWireBytes(f);
        origins.add(f.origin);
      } else {
        keep.push(f);
      }
    }
    let from = 0;
    while (keep.length - from > this.max || (bytes > this.maxBytes && from < keep.length)) {
      const f = keep[from++]!;
      bytes -= frameWireBytes(f);
      origins.add(f.origin);
      n++;
    }
    this.frames = from > 0 ? keep.slice(from) : keep;
    this.bytes = bytes;
    this.onShed({ frames: n, origins: [...origins] });
  }
}
