/**
 * An interval timer that runs only while there is something for it to do: `wake()` starts it (a
 * no-op while it runs), and after each run it stops itself when `busy()` says there is nothing left.
 * A timer firing every 250 ms for nothing is 4 interruptions a second of every core a node's job
 * holds; this one fires only between an event that needs watching and its end.
 */
export class OnDemandInterval {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly everyMs: number,
    private readonly run: () => void,
    private readonly busy: () => boolean,
  ) {}

  wake(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setInterval(() => {
      this.run();
      if (!this.busy()) this.stop();
    }, this.everyMs);
    this.timer.unref();
  }

  get running(): boolean {
    return this.timer !== null;
  }

  private stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  close(): void {
    this.closed = true;
    this.stop();
  }
}
