/**
 * How far behind its input a root is: the median, over one window, of how old each frame's sample
 * was when the root applied it. In steady state that is the trees' latency (tens of ms); when the
 * root falls behind (a burst, a slow render) it is the backlog, and the root must not take its own
 * backlog for silent nodes. Log-scale buckets: one increment per frame, no allocation.
 */
export class IngestLag {
  /** Bucket k counts lags in [2^(k-1), 2^k) ms; bucket 0 counts lags under 1 ms (and clocks ahead of the root's). */
  private readonly buckets = new Uint32Array(33);
  private total = 0;

  observe(lagMs: number): void {
    const k = lagMs < 1 ? 0 : Math.min(32, 32 - Math.clz32(lagMs));
    this.buckets[k]!++;
    this.total++;
  }

  get samples(): number {
    return this.total;
  }

  /** The window's median lag in ms (the upper edge of its bucket, so at most 2× high), or null when nothing arrived. */
  medianMs(): number | null {
    if (this.total === 0) return null;
    let seen = 0;
    for (let k = 0; k < this.buckets.length; k++) {
      seen += this.buckets[k]!;
      if (seen * 2 >= this.total) return k === 0 ? 0 : 2 ** k;
    }
    return 2 ** 32;
  }

  /** Starts a new window. */
  reset(): void {
    this.buckets.fill(0);
    this.total = 0;
  }
}
