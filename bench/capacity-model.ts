/**
 * The README's capacity model: from the constants a bench run measures, what a cluster of N nodes
 * needs. Each figure is a sum of measured costs times counts; nothing is fitted.
 */
export interface CapacityConstants {
  /** Bytes a node sends per interval (leaf link), keyframes amortised. */
  readonly bytesPerNodePerInterval: number;
  /** Root CPU per sample update applied, µs (per-frame costs included, as the bench divides). */
  readonly rootUsPerUpdate: number;
  /** Root memory per series, bytes (RSS growth over the series it holds). */
  readonly rootBytesPerSeries: number;
  /** Relay CPU per forwarded frame, µs. */
  readonly relayUsPerFrame: number;
  /** Root CPU for one gzip-encoded scrape of its page, per series on it, µs (an interval after the last scrape). */
  readonly rootScrapeUsPerSeries: number;
  /** The same for a scrape that builds every chunk (the first; a scrape long after the last one tends to it). */
  readonly rootScrapeFirstUsPerSeries: number;
  /** Share of a node's series that move per interval. */
  readonly changeRate: number;
}

export interface CapacityPlan {
  readonly nodes: number;
  readonly roots: number;
  readonly depth: number;
  readonly seriesPerRoot: number;
  readonly rootMemoryGb: number;
  /** Cores a root spends on ingest (sample updates), at the interval. */
  readonly rootIngestCores: number;
  /** Keyframes' CPU after a root restart or a root failover: every node of its trees once, s of one core. */
  readonly rootResyncCoreS: number;
  /** Cores the busiest relay (top of a tree) spends forwarding its subtree's frames. */
  readonly topRelayCores: number;
  /** Bytes per second into each root. */
  readonly rootInBytesPerS: number;
  /** One scrape of a root's whole page (render after a tick + gzip level 1, as measured), s of one core. */
  readonly scrapeCoreS: number;
  /** One scrape that builds every chunk of the page, s of one core. */
  readonly scrapeFirstCoreS: number;
}

/**
 * A 500-series keyframe costs a root ~1.4 ms to apply, definitions and all (`data-path-figures.js
 * ingest`: 1.33-1.41 ms on 2000 fresh origins, 2.7 µs per series).
 */
const KEY_US_PER_SERIES = 2.7;

export function capacityPlan(nodes: number, series: number, roots: number, trees: number, intervalMs: number, c: CapacityConstants): CapacityPlan {
  const perRoot = nodes / roots;
  const perTree = nodes / trees;
  const perS = 1000 / intervalMs;
  // One frame (or alive record) per node per interval; the top relay of a tree carries half of it.
  const topSubtree = perTree / 2;
  return {
    nodes,
    roots,
    depth: Math.ceil(Math.log2(perTree + 1)),
    seriesPerRoot: perRoot * series,
    rootMemoryGb: (perRoot * series * c.rootBytesPerSeries) / 2 ** 30,
    rootIngestCores: (perRoot * series * c.changeRate * perS * c.rootUsPerUpdate) / 1e6,
    rootResyncCoreS: (perRoot * series * KEY_US_PER_SERIES) / 1e6,
    topRelayCores: (topSubtree * perS * c.relayUsPerFrame) / 1e6,
    rootInBytesPerS: perRoot * c.bytesPerNodePerInterval * perS,
    scrapeCoreS: (perRoot * series * c.rootScrapeUsPerSeries) / 1e6,
    scrapeFirstCoreS: (perRoot * series * c.rootScrapeFirstUsPerSeries) / 1e6,
  };
}

/** The README's table: 10k-200k nodes, 8 roots and trees (16 at 200k), from a run's constants. */
export function formatCapacity(series: number, intervalMs: number, c: CapacityConstants): string {
  const rows = [10_000, 50_000, 100_000, 200_000].map((n) => {
    const roots = n > 100_000 ? 16 : 8;
    return capacityPlan(n, series, roots, roots, intervalMs, c);
  });
  return rows
    .map(
      (p) =>
        `  ${String(p.nodes).padStart(7)} nodes, ${p.roots} roots: depth ${p.depth}, ${(p.seriesPerRoot / 1e6).toFixed(2)}M series and ${p.rootMemoryGb.toFixed(1)} GB per root, ` +
        `${p.rootIngestCores.toFixed(2)} cores of ingest, ${p.rootResyncCoreS.toFixed(1)} core-s to take its trees back after a restart, ` +
        `${(p.rootInBytesPerS / 1e6).toFixed(2)} MB/s in, ${p.scrapeCoreS.toFixed(1)} core-s per scrape of its page an interval after the last (${p.scrapeFirstCoreS.toFixed(1)} every chunk built); top relay ${(p.topRelayCores * 100).toFixed(1)} % of a core`,
    )
    .join("\n");
}
