import { BanyanError, Code } from "../src/core/errors.js";
import { Receiver, measureRemoteWrite, type RemoteWriteFigures } from "./remote-write-baseline.js";
import { execSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { VERSION } from "../src/core/version.js";
import { BenchCluster } from "./bench-cluster.js";
import type { BenchOptions } from "./bench-options.js";
import { BENCH_SERVICE_PORTS, planBench } from "./bench-plan.js";
import { assertPortsFree } from "./bench-ports.js";
import { prometheusBytesPerNode } from "./frame-templates.js";
import { peakRss, processStats } from "./process-stats.js";
import { runDirectBaseline, runPrometheusBaseline, type PrometheusBaseline } from "./prometheus-baseline.js";
import { CounterGrowth, histogramMaxMs, histogramQuantile, latencyBuckets, total } from "./root-metrics.js";
import { failoverScenario, type FailoverFigures } from "./failover-scenario.js";
import { rootRestartScenario, watchWindow, type StormFigures } from "./storm-scenario.js";
import { scrapeRoots } from "./root-scrapes.js";
import { labFromEnv } from "./lab/lab-run.js";
import { layLab } from "./lab/lab-plan.js";
import { labFigures, prepareLab, type LabFigures } from "./lab/lab-bench.js";

/** The result of one bench run: the JSON that `--json` writes, comparable across commits. */
/** How far a root's RSS moves with its garbage collector's timing alone: a growth under it says nothing of the series' cost. */
const ROOT_RSS_NOISE_MB = 64;

export interface BenchResult {
  machine: { cpus: number; cpu_model: string; memory_gb: number; node: string; banyan: string; commit: string; date: string };
  params: BenchOptions;
  nodes: number;
  series_per_node: number;
  interval_ms: number;
  trees: number;
  depth: number;
  real_relays: number;
  real_relay_depth: number;
  bytes_per_node_per_interval: number;
  root_link_bytes_per_node_per_interval: number;
  prometheus_text_bytes_per_node_per_interval: number;
  prometheus_gzip_bytes_per_node_per_interval: number;
  ratio_vs_gzip: number;
  latency_ms: { p50: number; p99: number; max: number };
  /** Times a root marked a node down during the steady window (banyan_root_nodes_down_total). */
  nodes_marked_down: number;
  /** A root's scrape one interval after the previous one (the largest over the roots). */
  root_render_ms: number;
  /** A root's first scrape, every chunk built. */
  root_render_first_ms: number;
  /** The same as root_render_ms, gzip-encoded as Prometheus asks for it. */
  root_render_gzip_ms: number;
  root_render_bytes: number;
  /**
   * A root's CPU for that gzip-encoded scrape, per series on its page, µs (its CPU over the scrape
   * less what its steady ingest took meanwhile; the largest over the roots): the capacity model's
   * cost of a scrape.
   */
  root_scrape_cpu_us_per_series: number;
  /** The same for the first scrape (identity), every chunk built: what a scrape costs when every family moved since the last. */
  root_scrape_first_cpu_us_per_series: number;
  root_series: number;
  root_bytes_per_series: number;
  root_cpu_us_per_sample_update: number;
  root_rss_mb: number[];
  relay_cpu_us_per_frame: number;
  relay_cpu_us_per_child_per_interval: number;
  relay_rss_mb: number[];
  simulator_cpu_cores: number;
  agent: { cpu_percent: number; rss_mb: number };
  failover: FailoverFigures | null;
  /** The start: every node started in the same tick (first keyframes spread by startSpreadMs). */
  start: StormFigures;
  root_restart: ({ visible_ms: number; back_home_ms: number; nodes_lost: number; share: number } & StormFigures) | null;
  prometheus_baseline: PrometheusBaseline | null;
  /** --remote-write: the receiver's cost against a Prometheus scraping the same series directly (cpu_ratio_vs_direct: receiver / direct). */
  remote_write: (RemoteWriteFigures & { direct_cpu_cores: number; direct_rss_mb: number; cpu_ratio_vs_direct: number }) | null;
  /** --hosts netns: the emulated hosts, the wire bytes their switch counted, the network scenario. */
  lab: LabFigures | null;
  /** Why this run's figures should not be trusted (empty when nothing says so): a machine loaded past its cores, scrapes that failed. */
  unreliable: string[];
  timeline: { t_s: number[]; latency_p50_ms: number[]; latency_p99_ms: number[]; leaf_bytes_per_s: number[]; root_bytes_per_s: number[]; recovery: { t_ms: number[]; fresh_fraction: number[] } };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runBench(o: BenchOptions, say: (line: string) => void, progress: (label: string, fraction: number) => void): Promise<BenchResult> {
  const lab = o.hosts === "netns" ? labFromEnv() : null;
  if (o.hosts === "netns" && lab === null) throw new Error("--hosts netns: no lab handed to this process (run `banyan bench --hosts netns`, which builds one)");
  const planned = planBench(o.nodes, o.trees, o.roots, o.maxRealRelays, o.basePort);
  const layout = lab === null ? null : layLab(planned, o.basePort, (h) => lab.host(h).ip);
  const plan = layout?.plan ?? planned;
  // Every port of the block free before anything starts (a second bench on this host said so, not "worker exited with 1").
  if (lab === null) await assertPortsFree(plan.portBase, BENCH_SERVICE_PORTS + 2 * plan.topology.roots.length + plan.relays.length);
  const dir = mkdtempSync(join(tmpdir(), "banyan-bench-"));
  // The roots', relays' and simulator's own warnings (a node marked down, a slow scrape) go to a log
  // the bench names, not over its progress; kept after the run only when something was written.
  const logPath = join(tmpdir(), `banyan-bench-processes-${process.pid}.log`);
  const logFd = openSync(logPath, "w");
  const cluster = new BenchCluster(plan, o, join(dir, "topology.json"), logFd, lab !== null && layout !== null ? { lab, layout } : null);
  say(`plan: ${o.nodes} nodes × ${o.series} series in ${o.trees} trees (depth ${plan.depth}) under ${o.roots} roots; ${plan.relays.length} real relays (depth ≤ ${plan.realDepth}) in ${lab !== null ? "a process and host each" : `${o.relayProcesses} processes`}, ${plan.streams.length} simulated subtree streams; ports ${plan.portBase}+`);
  let receiver: Receiver | null = null;
  /** A daemon of the cluster died: what follows would measure a broken cluster, so the run fails here. */
  const failIfDied = (stage: string): void => {
    if (cluster.died.length > 0) throw new BanyanError(Code.Failed, `the bench's own daemons died during the run (by ${stage}), so it has no figures to trust: ${cluster.died.join("; ")} (their log: ${logPath})`);
  };
  /**
   * A phase whose steps report nothing themselves: the bar moves with the time it usually takes
   * (held at 99 % until it ends), so every phase of a run shows it is alive.
   */
  const phase = async <T>(label: string, usualS: number, run: () => Promise<T>): Promise<T> => {
    const began = Date.now();
    progress(label, 0);
    const timer = setInterval(() => progress(label, Math.min(0.99, (Date.now() - began) / 1000 / usualS)), 500);
    try {
      const out = await run();
      failIfDied(label);
      return out;
    } finally {
      clearInterval(timer);
      progress(label, 1);
    }
  };
  // At the end, or on SIGTERM or Ctrl-C: stop every process of the cluster and the receiver (their
  // ports with them), remove the run's files, keep the processes' log only when they wrote one.
  let cleaned = false;
  const cleanUp = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    await Promise.allSettled([cluster.stop(), receiver?.stop()]);
    rmSync(dir, { recursive: true, force: true });
    closeSync(logFd);
    if (statSync(logPath).size === 0) rmSync(logPath, { force: true });
    else say(`the cluster's processes logged to ${logPath}`);
  };
  // Kept while stopping: a second signal (Ctrl-C reaches this process from the terminal and, on a
  // lab, again from the process that built it) must not end it before its cleanup has.
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping the bench cluster`);
    void cleanUp().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // On a lab, the process that built it is the parent: gone, this run stops too (the lab goes with the next run or --cleanup).
  const onOrphaned = (): void => onSignal("SIGTERM");
  if (lab !== null) process.once("disconnect", onOrphaned);
  try {
    if (o.remoteWrite !== null) {
      // The receiver first, so the roots write to it from their first frame.
      receiver = new Receiver(o.remoteWrite, plan.portBase + 2, dir);
      await receiver.start();
      // Each root queues on disk (its memory stays flat whatever the outage).
      const url = receiver.url;
      cluster.rootSets = (root) => [`remoteWrite=[{url: "${url}", protocol: "1.0", refreshMs: ${o.remoteWriteRefreshMs}, queue: {dir: "${join(dir, `remote-write-${root}`)}"}}]`];
    }
    const thin = lab !== null ? await prepareLab(cluster, o, dir, say) : null;
    await cluster.startRoots();
    // The empty roots' RSS: the least of a second's samples (right after start it still holds the
    // start's garbage, and a 10,000-series run once read a negative cost per series against it).
    const emptyRootRss = cluster.rootProcessStats().map((s) => s.rssBytes);
    for (let k = 0; k < 10; k++) {
      await new Promise((r) => setTimeout(r, 100));
      cluster.rootProcessStats().forEach((s, i) => (emptyRootRss[i] = Math.min(emptyRootRss[i]!, s.rssBytes)));
    }
    await cluster.startRelays();
    cluster.startAgent();
    const startedAt = Date.now();
    await cluster.startSimulator();

    // Warm-up: every node started in the same tick; until every one is up at a root.
    let up = 0;
    const start = await watchWindow(
      cluster,
      startedAt,
      () => up >= o.nodes || cluster.died.length > 0,
      60_000 + o.nodes * 5,
      (reports) => {
        up = new Set(reports.flat().filter((n) => n.up).map((n) => n.node)).size;
        progress("warm-up", up / o.nodes);
      },
      0,
    );
    say(`start: ${up} of ${o.nodes} nodes up at the roots after ${start.whole_ms ?? "(never)"} ms; peak p99 ${start.peak_p99_ms.toFixed(0)} ms, ${(start.key_bytes / 1e6).toFixed(1)} MB of keyframes, ${start.nodes_marked_down} nodes marked down, ${start.failovers} failovers`);
    failIfDied("the start");
    await cluster.rootsSettled(o.intervalMs);

    // Steady window.
    const timeline: BenchResult["timeline"] = { t_s: [], latency_p50_ms: [], latency_p99_ms: [], leaf_bytes_per_s: [], root_bytes_per_s: [], recovery: { t_ms: [], fresh_fraction: [] } };
    const t0 = Date.now();
    const [m0, w0, s0] = [await cluster.rootMetrics(), await cluster.workerStats(), await cluster.simStats()];
    const r0 = cluster.rootProcessStats();
    const wire0 = lab?.wireBytes() ?? null;
    const a0 = cluster.agent ? processStats(cluster.agent.pid!) : null;
    let prevM = m0;
    let prevS = s0;
    for (let s = 1; s <= o.durationS; s++) {
      await sleep(Math.max(0, t0 + s * 1000 - Date.now()));
      const [m, sim] = [await cluster.rootMetrics(), await cluster.simStats()];
      const lb = latencyBuckets(m).map(([le, c], k) => [le, c - (latencyBuckets(prevM)[k]?.[1] ?? 0)] as [number, number]);
      timeline.t_s.push(s);
      timeline.latency_p50_ms.push(histogramQuantile(lb, 0.5));
      timeline.latency_p99_ms.push(histogramQuantile(lb, 0.99));
      timeline.leaf_bytes_per_s.push(sim.payloadBytes + sim.envelopeBytes - prevS.payloadBytes - prevS.envelopeBytes);
      timeline.root_bytes_per_s.push(total(m, "banyan_relay_payload_bytes_received_total") - total(prevM, "banyan_relay_payload_bytes_received_total"));
      prevM = m;
      prevS = sim;
      progress("steady", s / o.durationS);
    }
    const seconds = (Date.now() - t0) / 1000;
    // The 1-minute load at the end of the steady window: past the cores, processes waited for CPU.
    const steadyLoad = loadavg()[0]!;
    const [m1, w1, s1] = [prevM, await cluster.workerStats(), prevS];
    const downs = new CounterGrowth("banyan_root_nodes_down_total");
    downs.add(m0);
    const r1 = cluster.rootProcessStats();
    const wire1 = lab?.wireBytes() ?? null;
    const a1 = cluster.agent ? processStats(cluster.agent.pid!) : null;
    const ticks = (seconds * 1000) / o.intervalMs;

    const simNodes = plan.streams.reduce((n, s) => n + s.origins.length, 0) - (plan.realAgent ? 1 : 0);
    const leafBytes = (s1.payloadBytes + s1.envelopeBytes - s0.payloadBytes - s0.envelopeBytes) / simNodes / ticks;
    const envelopePerFrame = s1.frames > s0.frames ? (s1.envelopeBytes - s0.envelopeBytes) / (s1.frames - s0.frames) : 0;
    const rootFrames = total(m1, "banyan_relay_frames_received_total") - total(m0, "banyan_relay_frames_received_total");
    const rootLinkBytes = (total(m1, "banyan_relay_payload_bytes_received_total") - total(m0, "banyan_relay_payload_bytes_received_total") + rootFrames * envelopePerFrame) / o.nodes / ticks;
    const prom = prometheusBytesPerNode(o.series, o.changeRate, o.seed);
    const lat = latencyBuckets(m1).map(([le, c], k) => [le, c - (latencyBuckets(m0)[k]?.[1] ?? 0)] as [number, number]);
    const updates = total(m1, "banyan_root_series_updates_total") - total(m0, "banyan_root_series_updates_total");
    const rootCpuS = r1.reduce((s, r, k) => s + r.cpuS - r0[k]!.cpuS, 0);
    const forwarded = w1.reduce((s, w) => s + w.forwarded, 0) - w0.reduce((s, w) => s + w.forwarded, 0);
    const relayCpuUs = w1.reduce((s, w) => s + w.cpuUs, 0) - w0.reduce((s, w) => s + w.cpuUs, 0);
    const children = w1.reduce((s, w) => s + w.children, 0);
    const rootSeries = total(m1, "banyan_root_series");

    // Render: each root scraped as Prometheus would (first, an interval later, gzip), and what that costs it.
    const scrapes = await scrapeRoots(cluster.roots, o.intervalMs, (k) => (r1[k]!.cpuS - r0[k]!.cpuS) / seconds, (k) => m1[k]?.get("banyan_root_series") ?? NaN, say);
    const rootRss = cluster.rootProcessStats().map((s) => s.rssBytes);

    const result: BenchResult = {
      machine: { cpus: cpus().length, cpu_model: cpus()[0]?.model ?? "", memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version, banyan: VERSION, commit: commit(), date: new Date().toISOString() },
      params: o,
      nodes: o.nodes,
      series_per_node: o.series,
      interval_ms: o.intervalMs,
      trees: o.trees,
      depth: plan.depth,
      real_relays: plan.relays.length,
      real_relay_depth: plan.realDepth,
      bytes_per_node_per_interval: leafBytes,
      root_link_bytes_per_node_per_interval: rootLinkBytes,
      prometheus_text_bytes_per_node_per_interval: prom.text,
      prometheus_gzip_bytes_per_node_per_interval: prom.gzip,
      ratio_vs_gzip: prom.gzip / leafBytes,
      latency_ms: { p50: histogramQuantile(lat, 0.5), p99: histogramQuantile(lat, 0.99), max: histogramMaxMs(lat) },
      nodes_marked_down: downs.add(m1),
      root_render_ms: scrapes.ms,
      root_render_first_ms: scrapes.firstMs,
      root_render_gzip_ms: scrapes.gzipMs,
      root_render_bytes: scrapes.bytes,
      root_scrape_cpu_us_per_series: scrapes.gzipCpuUsPerSeries,
      root_scrape_first_cpu_us_per_series: scrapes.firstCpuUsPerSeries,
      root_series: rootSeries,
      root_bytes_per_series: rootSeries > 0 ? rootRss.reduce((s, r, k) => s + r - emptyRootRss[k]!, 0) / rootSeries : NaN,
      root_cpu_us_per_sample_update: updates > 0 ? (rootCpuS * 1e6) / updates : NaN,
      root_rss_mb: rootRss.map((b) => b / 2 ** 20),
      relay_cpu_us_per_frame: forwarded > 0 ? relayCpuUs / forwarded : NaN,
      relay_cpu_us_per_child_per_interval: children > 0 ? relayCpuUs / children / ticks : NaN,
      relay_rss_mb: w1.map((w) => w.rss / 2 ** 20),
      simulator_cpu_cores: (s1.cpuUs - s0.cpuUs) / 1e6 / seconds,
      agent: a0 && a1 ? { cpu_percent: ((a1.cpuS - a0.cpuS) / seconds) * 100, rss_mb: peakRss(cluster.agent!.pid!) / 2 ** 20 } : { cpu_percent: NaN, rss_mb: NaN },
      failover: null,
      start,
      root_restart: null,
      prometheus_baseline: null,
      remote_write: null,
      lab: null,
      unreliable: [],
      timeline,
    };
    if (steadyLoad > cpus().length) result.unreliable.push(`the machine was loaded past its cores (1-minute load ${steadyLoad.toFixed(1)} on ${cpus().length} cores): CPU and latency figures are upper bounds`);
    // A root's RSS moves by tens of MB with its collector's timing: a growth below that is noise.
    const rootGrowthMb = rootRss.reduce((s, r, k) => s + r - emptyRootRss[k]!, 0) / 2 ** 20;
    if (rootGrowthMb < ROOT_RSS_NOISE_MB) result.unreliable.push(`the roots' memory grew ${rootGrowthMb.toFixed(0)} MB for their ${rootSeries} series, within the RSS noise of a root (~${ROOT_RSS_NOISE_MB} MB, its garbage collector's timing): root_bytes_per_series means little; measure with ≥ 100,000 series a root`);
    if (![scrapes.ms, scrapes.firstMs, scrapes.gzipMs].every(Number.isFinite)) result.unreliable.push("a root did not answer its scrape (see the log of the cluster's processes)");

    if (receiver !== null) {
      say(`remote_write: the roots write to a real ${receiver.kind}; its cost, then an outage of ${o.remoteWriteOutageS} s`);
      const rw = await phase("remote_write", Math.max(5, o.durationS) + o.remoteWriteOutageS + 20, () => measureRemoteWrite(cluster, receiver!, Math.max(5, o.durationS), o.remoteWriteOutageS, say));
      await receiver.stop();
      // Against the same series scraped directly by a Prometheus, in this run.
      const direct = o.baselinePrometheus ? null : await phase("direct", o.durationS + 15, () => runDirectBaseline(cluster, o, dir, say));
      result.remote_write = { ...rw, direct_cpu_cores: direct?.cpu_cores ?? NaN, direct_rss_mb: direct?.rss_mb ?? NaN, cpu_ratio_vs_direct: direct ? rw.receiver_cpu_cores / direct.cpu_cores : NaN };
      if (direct !== null && direct.failed_scrapes > 0) result.unreliable.push(`the direct Prometheus failed ${direct.failed_scrapes} of ${direct.scrapes} scrapes: its cost is understated`);
    }
    if (o.baselinePrometheus) {
      say("baseline: a real Prometheus scraping the roots, then scraping the nodes directly");
      result.prometheus_baseline = await phase("baseline", 2 * o.durationS + 30, () => runPrometheusBaseline(cluster, o, dir, say));
      for (const [what, run] of [["scraping the roots", result.prometheus_baseline.roots], ["scraping the nodes directly", result.prometheus_baseline.direct]] as const) {
        if (run.failed_scrapes > 0) result.unreliable.push(`the baseline Prometheus ${what} failed ${run.failed_scrapes} of ${run.scrapes} scrapes: its cost is understated`);
      }
      if (result.remote_write !== null) {
        const d = result.prometheus_baseline.direct;
        result.remote_write = { ...result.remote_write, direct_cpu_cores: d.cpu_cores, direct_rss_mb: d.rss_mb, cpu_ratio_vs_direct: result.remote_write.receiver_cpu_cores / d.cpu_cores };
      }
    }
    if (wire0 !== null && wire1 !== null) {
      const wire = { before: wire0, after: wire1, ticks, simNodes };
      result.lab = await labFigures(cluster, o, wire, { leafBytes, rootLinkBytes, gzipBytes: prom.gzip, p99Ms: result.latency_ms.p99 }, thin, phase, say);
    }
    const killed = new Set<string>();
    if (o.scenario === "failover" || o.scenario === "all") result.failover = await phase("failover", 30, () => failoverScenario(cluster, o.killRelays, timeline.recovery, killed, say));
    if (o.scenario === "root-restart" || o.scenario === "storm" || o.scenario === "all") result.root_restart = await phase("restart", 40, () => rootRestartScenario(cluster, o.intervalMs, killed, say));
    failIfDied("the end");
    return result;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    process.off("disconnect", onOrphaned);
    await cleanUp();
  }
}

function commit(): string {
  try {
    return execSync("git rev-parse --short HEAD", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    return "unknown";
  }
}
