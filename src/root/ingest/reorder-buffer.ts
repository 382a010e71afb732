import type { Frame } from "../../gen/banyan/v1/uplink_pb.js";

interface Held {
  /** Frames that came ahead of a gap, ascending by sequence. */
  frames: Frame[];
  bytes: number;
  /** Since when this origin's stream has a gap. */
  readonly sinceMs: number;
  /** The highest sequence known to exist (a held frame or an alive record said so). */
  maxSeq: bigint;
}

/**
 * Frames that arrive ahead of a gap in their origin's sequence, held briefly for the missing ones.
 * When a relay fails over while its old parent is only slow (not dead), the old parent still holds
 * some of the subtree's frames and delivers them after newer ones that came the new way; a root that
 * asked for a keyframe on every such gap asked thousands at once (at 10,000 nodes: 252 MB of
 * keyframes in a start on a loaded machine). Held frames either apply in order or, once `holdMs` has
 * passed with the gap still open, are dropped and the origin asked for a keyframe: nothing is lost
 * silently. Bounded per origin (`maxFrames`) and in total (`maxBytes`); past a bound the caller asks
 * for a keyframe at once.
 */
export class ReorderBuffer<K extends object> {
  private readonly held = new Map<K, Held>();
  private bytes = 0;

  constructor(
    private readonly holdMs: number,
    private readonly maxFrames = 8,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  get heldBytes(): number {
    return this.bytes;
  }

  get origins(): number {
    return this.held.size;
  }

  /** Holds a frame that came ahead of a gap; false when a bound refuses it (the origin needs a keyframe). */
  hold(origin: K, f: Frame, nowMs: number): boolean {
    const h = this.entry(origin, nowMs);
    if (h.frames.length >= this.maxFrames || this.bytes + f.payload.length > this.maxBytes) {
      this.clear(origin);
      return false;
    }
    let k = h.frames.length;
    while (k > 0 && h.frames[k - 1]!.seq > f.seq) k--;
    if (k > 0 && h.frames[k - 1]!.seq === f.seq) return true; // the same frame twice (two paths)
    h.frames.splice(k, 0, f);
    h.bytes += f.payload.length;
    this.bytes += f.payload.length;
    if (f.seq > h.maxSeq) h.maxSeq = f.seq;
    return true;
  }

  /** An alive record says frames up to `seq` exist: the gap is open until they arrive. */
  gapSeen(origin: K, seq: bigint, nowMs: number): void {
    const h = this.entry(origin, nowMs);
    if (seq > h.maxSeq) h.maxSeq = seq;
  }

  /** The held frame that follows `seq` (older ones are dropped); undefined when there is none. Closes the gap once it is filled. */
  next(origin: K, seq: bigint): Frame | undefined {
    const h = this.held.get(origin);
    if (h === undefined) return undefined;
    while (h.frames.length > 0 && h.frames[0]!.seq <= seq) this.take(h);
    const f = h.frames[0]?.seq === seq + 1n ? this.take(h) : undefined;
    if (h.frames.length === 0 && (f !== undefined ? f.seq : seq) >= h.maxSeq) this.held.delete(origin);
    return f;
  }

  /** Origins whose gap has stayed open past holdMs: their held frames are dropped; they need a keyframe. */
  expired(nowMs: number): K[] {
    const out: K[] = [];
    for (const [origin, h] of this.held) {
      if (nowMs - h.sinceMs <= this.holdMs) continue;
      out.push(origin);
      this.clear(origin);
    }
    return out;
  }

  clear(origin: K): void {
    const h = this.held.get(origin);
    if (h === undefined) return;
    this.bytes -= h.bytes;
    this.held.delete(origin);
  }

  private entry(origin: K, nowMs: number): Held {
    let h = this.held.get(origin);
    if (h === undefined) this.held.set(origin, (h = { frames: [], bytes: 0, sinceMs: nowMs, maxSeq: 0n }));
    return h;
  }

  private take(h: Held): Frame {
    const f = h.frames.shift()!;
    h.bytes -= f.payload.length;
    this.bytes -= f.payload.length;
    return f;
  }
}
