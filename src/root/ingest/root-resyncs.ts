import type { Counter } from "prom-client";
import type { Downlink } from "../../wire/frame-flow.js";
import { ResyncBudget } from "./resync-budget.js";
import type { OriginState } from "./origin-state.js";

export interface RootResyncOptions {
  readonly intervalMs: number;
  /** First wait before asking again an origin that just sent a keyframe; doubles up to keyframeIntervalMs. */
  readonly resyncIntervalMs: number;
  readonly keyframeIntervalMs: number;
  /** Requests per second; null: derived from what applying a keyframe costs this root. */
  readonly resyncPerS: number | null;
  readonly resyncBurst: number;
}

/** The share of a core a root spends on keyframes it asked for, when no rate is configured. */
const RESYNC_CORE_SHARE = 0.25;

/**
 * The root's keyframe requests: a ResyncBudget (rate, burst, oldest first, never twice in flight),
 * a per-origin backoff (an origin that needs keyframes again soon after one waits from
 * resyncIntervalMs, doubling, up to keyframeIntervalMs: a flapping node costs about one keyframe
 * per keyframe interval), and, unless configured, a rate that follows what applying a keyframe
 * costs here (a quarter of a core's worth). The requests the budget lets go leave down the
 * child-facing server (`connect`) every 100 ms.
 */
export class RootResyncs {
  private readonly budget: ResyncBudget;
  private downlink: Downlink | null = null;
  private listener: (origin: string) => void = () => undefined;
  private timer: NodeJS.Timeout | null = null;
  /** What applying one KEY frame costs here, µs (moving average). */
  private keyCostUs = 0;

  constructor(private readonly o: RootResyncOptions) {
    this.budget = new ResyncBudget({
      // Until a keyframe has been timed: 500 a second (a 500-series keyframe costs ~1 ms here).
      perS: o.resyncPerS ?? 500,
      burst: o.resyncBurst,
      inFlightMs: Math.max(2000, 3 * o.intervalMs),
      maxWaiting: 1_000_000,
    });
  }

  get waiting(): number {
    return this.budget.waitingCount;
  }

  get ratePerS(): number {
    return this.budget.ratePerS;
  }

  /** The origin needs a keyframe; false when the waiting set is full. */
  need(st: OriginState, reason: string): boolean {
    return this.budget.need(st.name, reason, st.lastKeyMs + st.keyGapMs);
  }

  /** A KEY frame of the origin was applied at `nowMs`, costing `applyMs`. */
  keyApplied(st: OriginState, nowMs: number, applyMs: number): void {
    const o = this.o;
    st.keyGapMs = nowMs - st.lastKeyMs < o.keyframeIntervalMs ? Math.min(o.keyframeIntervalMs, Math.max(o.resyncIntervalMs, 2 * st.keyGapMs)) : 0;
    st.lastKeyMs = nowMs;
    this.budget.satisfied(st.name);
    this.keyCostUs = this.keyCostUs === 0 ? applyMs * 1000 : 0.95 * this.keyCostUs + 0.05 * applyMs * 1000;
    if (o.resyncPerS === null && this.keyCostUs > 0) this.budget.setRate(Math.max(50, Math.min(20_000, (RESYNC_CORE_SHARE * 1e6) / this.keyCostUs)));
  }

  forget(origin: string): void {
    this.budget.forget(origin);
  }

  /** Where the requests go (the child-facing server). */
  connect(d: Downlink): void {
    this.downlink = d;
  }

  /** Told of every keyframe requested (the status page counts them). */
  onRequested(listener: (origin: string) => void): void {
    this.listener = listener;
  }

  start(clock: () => number, requested: Counter<"reason">): void {
    this.timer = setInterval(() => this.send(clock(), requested), 100);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Sends the requests the budget lets go now, counted by reason. */
  send(nowMs: number, requested: Counter<"reason">): void {
    const due = this.budget.take(nowMs);
    if (due.length === 0) return;
    const origins: string[] = [];
    for (const { origin, reason } of due) {
      requested.inc({ reason });
      this.listener(origin);
      origins.push(origin);
    }
    this.downlink?.resync(origins);
  }
}
