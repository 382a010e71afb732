import { IngestLag } from "./ingest-lag.js";
import type { LinkClock, OriginState } from "./origin-state.js";

/**
 * Who is down, judged against what the root could hear and on what each node sent:
 * - a sweep that runs late (the event loop was blocked, input waiting unread) marks nobody down,
 *   and the time it was held up does not count as anyone's silence;
 * - the backlog the root is working through (the median age of the samples it applied since the
 *   last sweep, or how long the oldest batch waiting to be applied has waited, the longer) extends
 *   deadAfterMs;
 * - a node is down only when it is also behind the link it came through: that link delivered
 *   samples deadAfterMs newer than the node's last (others behind it are heard, it is not), or
 *   delivered nothing at all. A congested link (a relay's queue full of keyframes) delivers old
 *   samples late, for every node behind it alike: later values, not nodes marked down.
 * A root or a link that falls behind shows values later; it never declares live nodes down and
 * asks them for keyframes (that was the collapse: 73,153 `node down` lines at 20,000 nodes).
 */
export class Liveness {
  /** Per child link (the ChildServer's link object): what it delivered, and when. Gone with the link. */
  private readonly links = new WeakMap<object, LinkClock>();
  private readonly lag = new IngestLag();
  private lastSweepMs: number;
  private backlogMs = 0;

  constructor(
    private deadAfterMs: number,
    readonly sweepEveryMs: number,
    nowMs: number,
  ) {
    this.lastSweepMs = nowMs;
  }

  setDeadAfterMs(ms: number): void {
    this.deadAfterMs = ms;
  }

  /** The backlog the last sweep allowed for, ms (0 when the root keeps up). */
  get backlog(): number {
    return this.backlogMs;
  }

  /** The clock of the link a batch came through (`owner` stands for everything that names no link). */
  linkClock(from: object | undefined, owner: object, nowMs: number): LinkClock {
    const key = from ?? owner;
    let c = this.links.get(key);
    if (c === undefined) this.links.set(key, (c = { watermarkMs: 0, arrivalMs: nowMs }));
    c.arrivalMs = nowMs;
    return c;
  }

  /** A frame or alive record sampled at `sampledMs` arrived now. */
  heard(link: LinkClock, sampledMs: number, nowMs: number): void {
    if (sampledMs > link.watermarkMs) link.watermarkMs = sampledMs;
    this.lag.observe(nowMs - sampledMs);
  }

  /**
   * One sweep: the origins that are up and now count as down. `stalled` when the sweep ran late
   * (nobody is marked down then); every origin is credited the time the loop was held up.
   * `inputBacklogMs`: how long the oldest input waiting to be applied has waited.
   */
  sweep(nowMs: number, origins: Iterable<OriginState>, inputBacklogMs = 0): { stalled: boolean; down: OriginState[] } {
    const lateMs = nowMs - this.lastSweepMs - this.sweepEveryMs;
    this.lastSweepMs = nowMs;
    const stalled = lateMs > Math.max(50, this.sweepEveryMs / 2);
    const median = this.lag.medianMs();
    this.lag.reset();
    this.backlogMs = Math.max(inputBacklogMs, median === null ? 0 : Math.max(0, median - this.deadAfterMs / 4));
    const deadline = this.deadAfterMs + this.backlogMs;
    const down: OriginState[] = [];
    for (const st of origins) {
      if (lateMs > 20) st.lastSeenMs = Math.min(nowMs, st.lastSeenMs + lateMs);
      if (!stalled && st.up && nowMs - st.lastSeenMs > deadline && this.behindItsLink(st, nowMs, deadline)) down.push(st);
    }
    return { stalled, down };
  }

  private behindItsLink(st: OriginState, nowMs: number, deadline: number): boolean {
    const l = st.link;
    return l === null || nowMs - l.arrivalMs > deadline || l.watermarkMs - st.lastSampleMs > this.deadAfterMs;
  }
}
