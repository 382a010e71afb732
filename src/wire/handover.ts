import type { Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { ParentStream } from "./parent-stream.js";

/**
 * A deliberate move in flight, make-before-break: the stream being left stays open, unused, until
 * the new path has carried the node for `handoverMs` (its parent acking what it was sent), then it carries
 * the LEAVE frames and closes. A root on both paths ignores those LEAVEs (it already has newer
 * frames); a root on the old path only lets the node go once the new one shows it. (Before: LEAVE
 * first, then connect — every planned move left the node missing at every root for 1-2.5 s.)
 */
export class Handover {
  /** When the new stream became ready; null while it connects. */
  readyAtMs: number | null = null;

  constructor(
    private readonly old: ParentStream,
    private readonly leaving: readonly Frame[],
  ) {}

  /** Whether the new path has carried the node long enough to let the old one go. */
  due(nowMs: number, handoverMs: number, newParentAcks: boolean): boolean {
    return this.readyAtMs !== null && nowMs - this.readyAtMs >= handoverMs && newParentAcks;
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
