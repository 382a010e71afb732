/**
 * Keyframe requests under a budget. A root (or a relay) that needs keyframes from many origins at
 * once (it restarted, a root failed over to it, a queue overflowed) asks for them at a rate it can
 * absorb: a token bucket, oldest need first, never twice for one origin while a request is in flight.
 * Without it, 6,000 origins asked at once answered with 6,000 keyframes in one tick, the root fell
 * behind, marked nodes down, and asked again: the collapse this exists to prevent.
 * Pure: the caller passes the time; a root calls `take` on a timer and sends what it returns.
 */
export interface ResyncBudgetOptions {
  /** Requests per second (the bucket's refill rate). */
  readonly perS: number;
  /** Requests that may leave at once after a quiet spell (the bucket's size). */
  readonly burst: number;
  /** A request unanswered this long is made again (the keyframe was lost on the way). */
  readonly inFlightMs: number;
  /** Origins waiting at most; past it a need is refused (and counted by the caller). */
  readonly maxWaiting: number;
}

interface Waiting {
  /** Not before this time (an origin that needs keyframes again and again backs off). */
  readonly notBeforeMs: number;
  readonly reason: string;
}

export class ResyncBudget {
  private tokens: number;
  private lastRefillMs = -Infinity;
  /** Insertion order is need order: the oldest need goes first. */
  private readonly waiting = new Map<string, Waiting>();
  private readonly inFlight = new Map<string, { atMs: number; reason: string }>();
  private perS: number;

  constructor(private readonly opts: ResyncBudgetOptions) {
    this.tokens = opts.burst;
    this.perS = opts.perS;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  get ratePerS(): number {
    return this.perS;
  }

  /** A new rate (a root derives it from what a keyframe costs it). */
  setRate(perS: number): void {
    this.perS = perS;
  }

  /** The origin needs a keyframe, not before `notBeforeMs`. False when the waiting set is full. */
  need(origin: string, reason: string, notBeforeMs = 0): boolean {
    if (this.inFlight.has(origin) || this.waiting.has(origin)) return true;
    if (this.waiting.size >= this.opts.maxWaiting) return false;
    this.waiting.set(origin, { notBeforeMs, reason });
    return true;
  }

  /** A keyframe of the origin arrived: no request for it is in flight or waiting any more. */
  satisfied(origin: string): void {
    this.inFlight.delete(origin);
    this.waiting.delete(origin);
  }

  /** The origin is gone: forget any need of it. */
  forget(origin: string): void {
    this.satisfied(origin);
  }

  /** The requests that may leave now, oldest need first, with the reason each was needed. */
  take(nowMs: number): { origin: string; reason: string }[] {
    for (const [origin, f] of this.inFlight) {
      if (nowMs - f.atMs < this.opts.inFlightMs) continue;
      this.inFlight.delete(origin);
      this.waiting.set(origin, { notBeforeMs: 0, reason: "unanswered" });
    }
    this.tokens = Math.min(this.opts.burst, this.tokens + (Number.isFinite(this.lastRefillMs) ? ((nowMs - this.lastRefillMs) * this.perS) / 1000 : 0));
    this.lastRefillMs = nowMs;
    const out: { origin: string; reason: string }[] = [];
    if (this.tokens < 1) return out;
    for (const [origin, w] of this.waiting) {
      if (w.notBeforeMs > nowMs) continue;
      this.waiting.delete(origin);
      this.inFlight.set(origin, { atMs: nowMs, reason: w.reason });
      out.push({ origin, reason: w.reason });
      if (--this.tokens < 1) break;
    }
    return out;
  }
}
