/**
 * A source's slow question (a Slurm command) asked in the background, never on the sampling path:
 * at once on the first `ensure()`, then `intervalMs` after each answer, until `close()`. The source
 * serves the latest answer every tick.
 */
export class BackgroundPoll {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(
    private readonly poll: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** Starts the loop unless it runs (sources call it from `collect`). */
  ensure(): void {
    if (this.timer !== null || this.closed) return;
    const loop = async (): Promise<void> => {
      await this.poll();
      if (this.closed) return;
      this.timer = setTimeout(() => void loop(), this.intervalMs);
      this.timer.unref();
    };
    this.timer = setTimeout(() => void loop(), 0);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
