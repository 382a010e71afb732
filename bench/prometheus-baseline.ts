import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { stringify } from "yaml";
import { SyntheticSource } from "../src/agent/index.js";
import { ExpositionCache } from "../src/root/exposition/index.js";
import { OriginState } from "../src/root/ingest/index.js";
import { DeltaEncoder } from "../src/series/delta-encoder.js";
import { DEFAULT_SERIES_LIMITS } from "../src/series/payload.js";
import { renderTopology } from "../src/tools/topology/index.js";
import type { BenchCluster } from "./bench-cluster.js";
import type { BenchOptions } from "./bench-options.js";
import { peakRss, processStats } from "./process-stats.js";

/** What Prometheus paid in one pattern. */
export interface PromRun {
  readonly targets: number;
  readonly series: number;
  readonly cpu_cores: number;
  readonly rss_mb: number;
  readonly scrape_ms_avg: number;
  readonly scrape_ms_max: number;
  readonly scrapes: number;
  readonly failed_scrapes: number;
}

export interface PrometheusBaseline {
  /** Prometheus scraping the Banyan roots (honor_labels). */
  readonly roots: PromRun;
  /** The same Prometheus scraping node_exporter-like targets directly, same total series. */
  readonly direct: PromRun;
  /** direct CPU / roots CPU: how much cheaper the roots are for Prometheus. */
  readonly cpu_ratio: number;
  readonly rss_ratio: number;
}

/** Most direct targets this bench asks one Prometheus to scrape at once (the 1:N pattern breaks near 2,000 on 2 cores). */
const MAX_DIRECT_TARGETS = 1000;

export async function runPrometheusBaseline(cluster: BenchCluster, o: BenchOptions, dir: string, say: (l: string) => void): Promise<PrometheusBaseline> {
  const bin = which("prometheus");
  const windowS = Math.max(5, o.durationS);
  const interval = `${o.intervalMs / 1000}s`;
  // The first two ports of the cluster's block (bench-ports.ts): Prometheus, then the direct exporter.
  const port = cluster.plan.portBase;

  // The scrape config an administrator gets from `banyan topology render --format prometheus`.
  const rootsCfg = renderTopology(cluster.plan.topology, "prometheus", { scrapeInterval: interval, jobName: "banyan" });
  const roots = await measure(bin, rootsCfg, join(dir, "prom-roots"), port, "banyan", windowS, cluster.roots.length, say);
  const direct = await runDirectBaseline(cluster, o, dir, say);
  return { roots, direct, cpu_ratio: direct.cpu_cores / roots.cpu_cores, rss_ratio: direct.rss_mb / roots.rss_mb };
}

/** A real Prometheus scraping node_exporter-like targets directly, the same series in total as the cluster. */
export async function runDirectBaseline(cluster: BenchCluster, o: BenchOptions, dir: string, say: (l: string) => void): Promise<PromRun> {
  const bin = which("prometheus");
  const windowS = Math.max(5, o.durationS);
  const interval = `${o.intervalMs / 1000}s`;
  const port = cluster.plan.portBase;
  const targets = Math.min(o.nodes, MAX_DIRECT_TARGETS);
  const perTarget = Math.round((o.series * o.nodes) / targets);
  const variants = exporterVariants(perTarget, o.changeRate, o.seed);
  const server = createServer((req, res) => {
    const i = Number(/^\/node\/(\d+)/.exec(req.url ?? "")?.[1] ?? 0);
    const v = variants[(Math.floor(Date.now() / o.intervalMs) + i) % variants.length]!;
    const gz = /gzip/.test(req.headers["accept-encoding"] ?? "");
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4", ...(gz ? { "content-encoding": "gzip" } : {}) }).end(gz ? v.gzip : v.text);
  });
  await new Promise<void>((r) => server.listen(port + 1, "127.0.0.1", () => r()));
  const directCfg = stringify({
    global: { scrape_interval: interval, scrape_timeout: interval },
    scrape_configs: [
      {
        job_name: "direct",
        static_configs: Array.from({ length: targets }, (_, i) => ({ targets: [`127.0.0.1:${port + 1}`], labels: { __metrics_path__: `/node/${i}`, instance: `node${i}` } })),
      },
    ],
  });
  try {
    const direct = await measure(bin, directCfg, join(dir, "prom-direct"), port, "direct", windowS, targets, say);
    return { ...direct, series: perTarget * targets };
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

async function measure(bin: string, config: string, dataDir: string, port: number, job: string, windowS: number, targets: number, say: (l: string) => void): Promise<PromRun> {
  const cfgFile = `${dataDir}.yml`;
  writeFileSync(cfgFile, config);
  const prom: ChildProcess = spawn(bin, [`--config.file=${cfgFile}`, `--storage.tsdb.path=${dataDir}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
  try {
    const q = async (expr: string): Promise<number> => {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(expr)}`).then((r) => r.json() as Promise<{ data?: { result: { value: [number, string] }[] } }>).catch(() => ({ data: undefined }));
      return Number(res.data?.result[0]?.value[1] ?? NaN);
    };
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !((await q(`count(up{job="${job}"} == 1)`)) >= targets)) await new Promise((r) => setTimeout(r, 500));
    // Let series creation (the expensive first scrapes) settle before measuring: until the head's
    // series count held for two polls a second apart (a small cluster's at once), at most
    // min(10 s, 2 × window).
    const settleBy = Date.now() + Math.min(10_000, 2 * windowS * 1000);
    for (let last = NaN, held = 0; held < 2 && Date.now() < settleBy; ) {
      await new Promise((r) => setTimeout(r, 1000));
      const now = await headSeries(port);
      held = now === last ? held + 1 : 0;
      last = now;
    }
    const a = processStats(prom.pid!);
    await new Promise((r) => setTimeout(r, windowS * 1000));
    const b = processStats(prom.pid!);
    const w = `${windowS}s`;
    const run: PromRun = {
      targets,
      series: await q(`sum(scrape_samples_scraped{job="${job}"})`),
      cpu_cores: (b.cpuS - a.cpuS) / windowS,
      rss_mb: peakRss(prom.pid!) / 2 ** 20,
      scrape_ms_avg: (await q(`avg(avg_over_time(scrape_duration_seconds{job="${job}"}[${w}]))`)) * 1000,
      scrape_ms_max: (await q(`max(max_over_time(scrape_duration_seconds{job="${job}"}[${w}]))`)) * 1000,
      scrapes: await q(`sum(count_over_time(up{job="${job}"}[${w}]))`),
      // The two range queries may see a scrape more or fewer at the window edges: never below 0.
      failed_scrapes: Math.max(0, (await q(`sum(count_over_time(up{job="${job}"}[${w}]))`)) - (await q(`sum(sum_over_time(up{job="${job}"}[${w}]))`))),
    };
    say(`  Prometheus scraping ${targets} ${job === "banyan" ? "roots" : "nodes directly"}: ${run.cpu_cores.toFixed(3)} cores, ${run.rss_mb.toFixed(0)} MB, scrape ${run.scrape_ms_avg.toFixed(1)} ms avg, ${run.failed_scrapes} failed of ${run.scrapes}`);
    return run;
  } finally {
    prom.kill("SIGTERM");
    if (prom.exitCode === null) await once(prom, "exit");
  }
}

/** Series in a Prometheus' head block, from its own /metrics (NaN when it does not answer). */
async function headSeries(port: number): Promise<number> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text(), () => "");
  return Number(/^prometheus_tsdb_head_series (\S+)$/m.exec(text)?.[1] ?? NaN);
}

/** A few consecutive scrapes of a node_exporter-like node, plain and gzipped, served in rotation. */
function exporterVariants(series: number, changeRate: number, seed: number): { text: Buffer; gzip: Buffer }[] {
  const enc = new DeltaEncoder();
  const src = new SyntheticSource({ series, changeRate, seed, node: "direct" });
  const cache = new ExpositionCache();
  const st = new OriginState("direct", cache, DEFAULT_SERIES_LIMITS);
  const out: { text: Buffer; gzip: Buffer }[] = [];
  for (let k = 0; k < 8; k++) {
    src.collect({ define: (d) => enc.define(d), set: (id, v) => enc.set(id, v), remove: () => undefined });
    enc.requestKeyframe();
    st.apply(enc.encode()!.payload, "key");
    st.setVisible(true);
    // The target's own instance comes from the scrape config: drop the one the cache writes.
    const text = Buffer.from(cache.renderText("text").replace(/,?instance="direct"/g, "").replace(/\{\}/g, ""));
    out.push({ text, gzip: gzipSync(text) });
  }
  return out;
}

/** The path of a program the bench runs (installed by scripts/install-system-deps.sh). */
export function which(name: string): string {
  const res = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  const path = res.stdout.trim();
  if (res.status !== 0 || path === "") throw new Error(`${name} is not installed: run scripts/install-system-deps.sh (as root) first`);
  return path;
}
