/**
 * A timeout armed at most once at a time (arming an armed one is a no-op), unref'd so it never keeps
 * a daemon alive, and knowing when it is due. For the "set only while something waits" timers of
 * the uplink (its flush, its retry, its supervision).
 */
export class OneShotTimer {
  private timer: NodeJS.Timeout | null = null;
  private dueAt = 0;

  constructor(private readonly fire: () => void) {}

  get armed(): boolean {
    return this.timer !== null;
  }

  /** When it fires (ms since the epoch), while armed. */
  get dueAtMs(): number {
    return this.dueAt;
  }

  /** Fires `delayMs` from now, unless it is armed already. */
  arm(delayMs: number): void {
    if (this.timer !== null) return;
    this.dueAt = Date.now() + delayMs;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fire();
    }, delayMs);
    this.timer.unref();
  }

  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}
