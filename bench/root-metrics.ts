/** Reading the roots' own metrics (/api/v1/self) in the bench: totals, latency quantiles, deltas across restarts. */
export type RootMetrics = Map<string, number>[];

/** Quantile from cumulative Prometheus histogram buckets (upper bounds in seconds) → ms. */
export function histogramQuantile(buckets: [number, number][], q: number): number {
  const all = buckets.at(-1)?.[1] ?? 0;
  if (all <= 0) return NaN;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= q * all) {
      if (!Number.isFinite(le)) return prevLe * 1000;
      const span = count - prevCount;
      return (prevLe + (span > 0 ? (le - prevLe) * ((q * all - prevCount) / span) : 0)) * 1000;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe * 1000;
}

/** The upper bound of the highest bucket that gained samples, ms (Infinity: the +Inf bucket; NaN: no samples). */
export function histogramMaxMs(buckets: [number, number][]): number {
  const top = [...buckets].reverse().find(([, c], k, arr) => c > (arr[k + 1]?.[1] ?? 0));
  return top !== undefined ? top[0] * 1000 : NaN;
}

/** The roots' sample→root latency histograms, summed: [upper bound s, cumulative count]. */
export function latencyBuckets(metrics: RootMetrics): [number, number][] {
  const sum = new Map<number, number>();
  for (const m of metrics) {
    for (const [k, v] of m) {
      const b = /^banyan_root_frame_latency_seconds_bucket\{le="([^"]+)"\}$/.exec(k);
      if (!b) continue;
      const le = b[1] === "+Inf" ? Infinity : Number(b[1]);
      sum.set(le, (sum.get(le) ?? 0) + v);
    }
  }
  return [...sum].sort((a, b) => a[0] - b[0]);
}

/** Buckets of the window between two readings. */
export function bucketsBetween(before: RootMetrics, after: RootMetrics): [number, number][] {
  const b0 = latencyBuckets(before);
  return latencyBuckets(after).map(([le, c], k) => [le, Math.max(0, c - (b0[k]?.[1] ?? 0))] as [number, number]);
}

/** The sum of a metric (every label set) over the roots. */
export const total = (metrics: RootMetrics, name: string): number =>
  metrics.reduce((s, m) => s + [...m].filter(([k]) => k === name || k.startsWith(name + "{")).reduce((a, [, v]) => a + v, 0), 0);

/** A counter's growth between two readings over the roots, by the value of one label (only values that grew). */
export function grownByLabel(before: RootMetrics, after: RootMetrics, name: string, label: string): Record<string, number> {
  const by = (metrics: RootMetrics): Map<string, number> => {
    const out = new Map<string, number>();
    const re = new RegExp(`[{,]${label}="([^"]*)"`);
    for (const m of metrics) {
      for (const [k, v] of m) {
        if (!k.startsWith(name + "{")) continue;
        const value = re.exec(k)?.[1] ?? "";
        out.set(value, (out.get(value) ?? 0) + v);
      }
    }
    return out;
  };
  const b = by(before);
  const grown: Record<string, number> = {};
  for (const [value, n] of by(after)) if (n - (b.get(value) ?? 0) > 0) grown[value] = n - (b.get(value) ?? 0);
  return grown;
}

/**
 * How much a counter grew over the roots while they may restart: a root whose counter went down
 * started over, and its new value is all growth.
 */
export class CounterGrowth {
  private prev: number[] = [];
  private grown = 0;

  constructor(private readonly name: string) {}

  add(metrics: RootMetrics): number {
    metrics.forEach((m, k) => {
      const now = total([m], this.name);
      const before = this.prev[k] ?? now;
      this.grown += now >= before ? now - before : now;
      this.prev[k] = now;
    });
    return this.grown;
  }
}
