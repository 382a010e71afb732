import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { processStats } from "./process-stats.js";

/** A root of the bench cluster, as scraped. */
export interface ScrapedRoot {
  readonly name: string;
  readonly http: string;
  readonly proc: ChildProcess;
}

/** What scraping the roots cost: wall times (the largest over the roots) and the roots' own CPU. */
export interface RootScrapeFigures {
  /** The first scrape, every chunk built (plain text). */
  readonly firstMs: number;
  /** A scrape one interval after the previous one (plain text), and its bytes. */
  readonly ms: number;
  readonly bytes: number;
  /** The same gzip-encoded, as Prometheus asks for it. */
  readonly gzipMs: number;
  /** The roots' CPU per series on their page, µs: for the first scrape, and for the gzip one. */
  readonly firstCpuUsPerSeries: number;
  readonly gzipCpuUsPerSeries: number;
}

/**
 * Scrapes each root as Prometheus would: first a scrape that builds every chunk (a root's first after
 * its start), then, an interval later, one that pays for the families that moved in that tick, then
 * the same gzip-encoded. The wall times include the bench's own fetch and every other process on
 * the machine; what a scrape costs the root itself is its CPU over the scrape less what its steady
 * ingest (`ingestCores`) took meanwhile, per series on its page (`series`). A root that does not
 * answer (it died under the load) makes the figures NaN.
 */
export async function scrapeRoots(
  roots: readonly ScrapedRoot[],
  intervalMs: number,
  ingestCores: (k: number) => number,
  series: (k: number) => number,
  say: (line: string) => void,
): Promise<RootScrapeFigures> {
  type Scrape = { ms: number; bytes: number; cpuUsPerSeries: number };
  const scrape = async (k: number, encoding: string): Promise<Scrape | null> => {
    const r = roots[k]!;
    const cpu0 = processStats(r.proc.pid!).cpuS;
    const t = process.hrtime.bigint();
    const body = await fetch(`http://${r.http}/metrics`, { headers: { "accept-encoding": encoding } }).then((x) => x.arrayBuffer(), () => null);
    if (body === null) {
      say(`root ${r.name} did not answer its scrape (exit code ${r.proc.exitCode ?? "none"}, signal ${r.proc.signalCode ?? "none"})`);
      return null;
    }
    const ms = Number(process.hrtime.bigint() - t) / 1e6;
    const cpuS = processStats(r.proc.pid!).cpuS - cpu0 - ingestCores(k) * (ms / 1000);
    return { ms, bytes: body.byteLength, cpuUsPerSeries: (Math.max(0, cpuS) * 1e6) / series(k) };
  };
  const everyRoot = async (encoding: string): Promise<(Scrape | null)[]> => {
    const out: (Scrape | null)[] = [];
    for (const k of roots.keys()) out.push(await scrape(k, encoding));
    return out;
  };
  /** The largest over the roots; NaN when one did not answer. */
  const largest = (pages: readonly (Scrape | null)[], key: keyof Scrape): number => (pages.some((p) => p === null) ? NaN : Math.max(0, ...pages.map((p) => p![key])));
  const first = await everyRoot("identity");
  await sleep(intervalMs);
  const plain = await everyRoot("identity");
  await sleep(intervalMs);
  const gzip = await everyRoot("gzip");
  return {
    firstMs: largest(first, "ms"),
    ms: largest(plain, "ms"),
    bytes: largest(plain, "bytes"),
    gzipMs: largest(gzip, "ms"),
    firstCpuUsPerSeries: largest(first, "cpuUsPerSeries"),
    gzipCpuUsPerSeries: largest(gzip, "cpuUsPerSeries"),
  };
}
