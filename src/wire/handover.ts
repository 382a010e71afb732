import { FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { ParentStream } from "./parent-stream.js";

/**
 * A deliberate move in flight, make-before-break: the stream being left stays open, unused, until
 * the new path has carried the node for `handoverMs` (its parent acking what it was sent), then it carries
 * the LEAVE frames and closes. A root on both paths ignores those LEAVEs (it already has newer
 * frames); a root on the old path only lets the node go once the new one shows it. (Before: LEAVE
 * first, then connect — every planned move left the node missing at every root for 1-2.5 s.)
 *
 * A move to another root (`crossRoots`: back to a root that was cut off or restarted, say) carries
 * the subtree's origins to a root that does not have them: it takes each from its keyframe only,
 * asked under its resync budget. Until an origin's keyframe has gone the new way the old root is
 * its only view, so every batch also goes the old way (the node's own frames excepted: its new
 * epoch would make the old root ask it for a keyframe; its own LEAVE goes after `handoverMs`), and
 * the other LEAVEs wait until every origin behind the node sent a keyframe up the new way (at most
 * 10 × `handoverMs`). Measured on emulated hosts: moving back to a root after 30-60 s cut off,
 * without this, the nodes' newest sample at every root reached 5.0-5.9 s (past deadAfterMs);
 * with it, 1.04 s. A move within one root sends nothing twice.
 */
export class Handover {
  /** When the new stream became ready; null while it connects. */
  readyAtMs: number | null = null;
  /** Across roots: origins behind the node that have not sent a keyframe up the new way yet (from the LEAVE frames: the topology bounds them). */
  private readonly pendingKeys: Set<string>;
  /** The node's own LEAVE went the old way already. */
  private selfLeft = false;

  constructor(
    private readonly old: ParentStream,
    /**
     * The LEAVE frames, built when they go: each names its origin's newest sequence, and frames
     * that went the old way meanwhile would make earlier ones stale (the old root ignores those).
     */
    private readonly leaving: () => readonly Frame[],
    crossRoots = false,
  ) {
    this.pendingKeys = new Set(crossRoots ? leaving().map((f) => f.origin) : []);
  }

  /** Whether the new path has carried the node long enough to let the old one go (across roots: and every keyframe went up). */
  due(nowMs: number, handoverMs: number, newParentAcks: boolean): boolean {
    if (this.readyAtMs === null || !newParentAcks) return false;
    const forMs = nowMs - this.readyAtMs;
    return forMs >= handoverMs && (this.pendingKeys.size === 0 || forMs >= 10 * handoverMs);
  }

  /** Frames going up the new way: a keyframe is an origin the new root now has. */
  sent(frames: readonly Frame[]): void {
    if (this.pendingKeys.size === 0) return;
    for (const f of frames) if (f.kind === FrameKind.KEY) this.pendingKeys.delete(f.origin);
  }

  /** Origins still waited for (for the tests). */
  get awaiting(): number {
    return this.pendingKeys.size;
  }

  /**
   * The node's own LEAVE goes the old way once the new path has carried it for `handoverMs` (its
   * new epoch's keyframe went first): its own frames do not go the old way meanwhile, and the old
   * root would otherwise find it silent, and down, while the subtree waits for its keyframes.
   */
  leaveSelfIfDue(nowMs: number, handoverMs: number, newParentAcks: boolean): void {
    if (this.selfLeft || this.readyAtMs === null || !newParentAcks || nowMs - this.readyAtMs < handoverMs) return;
    this.selfLeft = true;
    const self = this.old.selfNode;
    const mine = this.leaving().filter((f) => f.origin === self);
    if (mine.length > 0 && this.old.isOpen) this.old.send(mine, []);
  }

  /** Whether batches should also go the old way: across roots, while some origin has not sent its keyframe the new way. */
  get mirroring(): boolean {
    return this.old.isOpen && this.pendingKeys.size > 0;
  }

  /** A batch sent the new way goes the old way too (when the old stream takes it), but for the node's own frames. */
  mirror(frames: Frame[], alive: Alive[]): void {
    if (!this.old.isOpen || !this.old.writable) return;
    const self = this.old.selfNode;
    this.old.send(
      frames.filter((f) => f.origin !== self),
      alive.filter((a) => a.origin !== self),
    );
  }

  /** Sends the LEAVE frames on the old stream (the node's own, unless sent already), waits up to `ackTimeoutMs` for their ack, closes it. */
  async leave(ackTimeoutMs: number): Promise<void> {
    const old = this.old;
    const self = old.selfNode;
    const rest = this.leaving().filter((f) => !this.selfLeft || f.origin !== self);
    if (old.isOpen && rest.length > 0) {
      old.send(rest, []);
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
