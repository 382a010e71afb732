import { FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { ParentStream } from "./parent-stream.js";

/** Origins a handover waits for at most (a relay's subtree is bounded by the topology; this bounds a peer's Resync). */
const MAX_AWAITED = 100_000;

/**
 * A deliberate move in flight, make-before-break: the stream being left stays open, unused, until
 * the new path has carried the node for `handoverMs` (its parent acking what it was sent), then it carries
 * the LEAVE frames and closes. A root on both paths ignores those LEAVEs (it already has newer
 * frames); a root on the old path only lets the node go once the new one shows it. (Before: LEAVE
 * first, then connect — every planned move left the node missing at every root for 1-2.5 s.)
 *
 * A move to another root (back to a root that was cut off, say) carries the subtree's origins to a
 * root that does not have them (or marked them down): it drops their deltas and asks keyframes of
 * them, and until those went the new way the old root is their only view. So while the new path
 * waits for keyframes (and until it acked a first batch) every batch also goes the old way, and
 * the old stream is kept until every origin the new path asked a keyframe of has sent one up (at
 * most 10 × `handoverMs`). A move within one root asks for nothing, and nothing is sent twice past
 * the first ack. Measured on emulated hosts: moving back to a root after 60 s cut off, without
 * this, the nodes' newest sample at every root reached 5.0 s (past deadAfterMs) while the new
 * root's keyframes came in under its resync budget.
 */
export class Handover {
  /** When the new stream became ready; null while it connects. */
  readyAtMs: number | null = null;
  /** Origins the new path asked keyframes of that have not sent one up since (bounded: the subtree's origins, at most MAX_AWAITED). */
  private readonly awaitingKeys = new Set<string>();

  constructor(
    private readonly old: ParentStream,
    private readonly leaving: readonly Frame[],
  ) {}

  /** Whether the new path has carried the node long enough to let the old one go (and every keyframe it asked for went up). */
  due(nowMs: number, handoverMs: number, newParentAcks: boolean): boolean {
    if (this.readyAtMs === null || !newParentAcks) return false;
    const forMs = nowMs - this.readyAtMs;
    return forMs >= handoverMs && (this.awaitingKeys.size === 0 || forMs >= 10 * handoverMs);
  }

  /** The new path asked keyframes of these origins. */
  asked(origins: readonly string[]): void {
    for (const o of origins) if (this.awaitingKeys.size < MAX_AWAITED) this.awaitingKeys.add(o);
  }

  /** Frames going up the new way: a keyframe answers its origin's request. */
  sent(frames: readonly Frame[]): void {
    if (this.awaitingKeys.size === 0) return;
    for (const f of frames) if (f.kind === FrameKind.KEY) this.awaitingKeys.delete(f.origin);
  }

  /** Whether batches should also go the old way: the new path has not acked yet, or waits for keyframes. */
  mirroring(newParentAcks: boolean): boolean {
    return this.old.isOpen && (!newParentAcks || this.awaitingKeys.size > 0);
  }

  /** A batch sent the new way goes the old way too (when the old stream takes it). */
  mirror(frames: Frame[], alive: Alive[]): void {
    if (!this.old.isOpen || !this.old.writable) return;
    // Not the node's own: its new epoch, the old way, would make the old root ask it for a keyframe.
    const self = this.old.selfNode;
    this.old.send(
      frames.filter((f) => f.origin !== self),
      alive.filter((a) => a.origin !== self),
    );
  }

  /** Origins still waited for (for the tests). */
  get awaiting(): number {
    return this.awaitingKeys.size;
  }

  /** Sends the LEAVE frames on the old stream, waits up to `ackTimeoutMs` for their ack, closes it. */
  async leave(ackTimeoutMs: number): Promise<void> {
    const old = this.old;
    if (old.isOpen && this.leaving.length > 0) {
      old.send([...this.leaving], []);
      const deadline = Date.now() + ackTimeoutMs;
      while (old.isOpen && old.hasUnacked && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    old.close();
  }

  /** The move failed: the old stream closes without LEAVE; returns what it had sent and not had acked. */
  abandon(): Frame[] {
    const back = this.old.takeBackUnacked();
    this.old.close();
    return back;
  }
}
