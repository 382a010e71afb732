import { OneShotTimer } from "../core/one-shot-timer.js";

/**
 * A periodic timer that runs only while there is something for it to do: `wake()` starts it (a
 * no-op while it runs), and after each run it stops itself when `busy()` says there is nothing left.
 * A timer firing every 250 ms for nothing is 4 interruptions a second of every core a node's job
 * holds; this one fires only between an event that needs watching and its end.
 *
 * Node wakes its loop at a cleared timer's time all the same when that timer was the next one due
 * (libuv's timer is not re-armed later), so a caller that knows nothing can go wrong sooner (a batch
 * cannot miss its ack before the ack timeout) gives that as the first delay, and `settle()` stops the
 * timer as soon as the watched thing ends: a timer due after the next tick's is cleared for free.
 */
export class OnDemandInterval {
  private readonly timer = new OneShotTimer(() => {
    this.run();
    // run() may have woken it again (a flush it caused): one timer, never two.
    if (!this.closed && this.busy()) this.timer.arm(this.everyMs);
  });
  private closed = false;

  constructor(
    private readonly everyMs: number,
    private readonly run: () => void,
    private readonly busy: () => boolean,
  ) {}

  /**
   * Starts the timer: its first run after `firstDelayMs` (default: the period). Running already, it
   * is brought forward when this asks for a run sooner (a connect or a handover while it waits for
   * an ack timeout), never put back.
   */
  wake(firstDelayMs = this.everyMs): void {
    if (this.closed) return;
    if (this.timer.armed) {
      if (this.timer.dueAtMs <= Date.now() + firstDelayMs) return;
      this.timer.clear();
    }
    this.timer.arm(firstDelayMs);
  }

  /** Stops the timer now when there is nothing left to watch (instead of at its next run). */
  settle(): void {
    if (this.timer.armed && !this.busy()) this.timer.clear();
  }

  get running(): boolean {
    return this.timer.armed;
  }

  close(): void {
    this.closed = true;
    this.timer.clear();
  }
}
