import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { BENCH_DEFAULTS } from "../../bench/bench-options.js";
import { formatBenchTable, writePlot } from "../../bench/bench-report.js";
import type { BenchResult } from "../../bench/run-bench.js";
import { requireProgram } from "../fixtures/programs.js";

const result: BenchResult = {
  machine: { cpus: 2, cpu_model: "test", memory_gb: 24, node: "v20", banyan: "0.1.0", commit: "abc", date: "2026-11-21T00:00:00Z" },
  params: BENCH_DEFAULTS,
  nodes: 100,
  series_per_node: 500,
  interval_ms: 1000,
  trees: 8,
  depth: 4,
  real_relays: 56,
  real_relay_depth: 3,
  bytes_per_node_per_interval: 120,
  root_link_bytes_per_node_per_interval: 118,
  prometheus_text_bytes_per_node_per_interval: 40000,
  prometheus_gzip_bytes_per_node_per_interval: 5000,
  ratio_vs_gzip: 41.7,
  latency_ms: { p50: 40, p99: 90, max: 100 },
  nodes_marked_down: 0,
  root_render_ms: 30,
  root_render_first_ms: 90,
  root_render_gzip_ms: 60,
  root_render_bytes: 4e6,
  root_scrape_cpu_us_per_series: 0.5,
  root_scrape_first_cpu_us_per_series: 2,
  root_series: 50000,
  root_bytes_per_series: 600,
  root_cpu_us_per_sample_update: 3,
  root_rss_mb: [120, 118],
  relay_cpu_us_per_frame: 18,
  relay_cpu_us_per_child_per_interval: 40,
  relay_rss_mb: [150],
  simulator_cpu_cores: 0.02,
  agent: { cpu_percent: 0.4, rss_mb: 80 },
  failover: { killed: 2, detection_ms: 5, recovery_ms: 450, nodes_lost: 0 },
  start: { whole_ms: 2100, peak_p99_ms: 300, key_bytes: 1.5e6, nodes_marked_down: 0, failovers: 0 },
  root_restart: { visible_ms: 1500, back_home_ms: 12000, nodes_lost: 0, share: 0.5, whole_ms: 12000, peak_p99_ms: 400, key_bytes: 8e5, nodes_marked_down: 0, failovers: 2 },
  prometheus_baseline: null,
  timeline: { t_s: [1, 2, 3], latency_p50_ms: [40, 41, 39], latency_p99_ms: [90, 85, 95], leaf_bytes_per_s: [12000, 12100, 11900], root_bytes_per_s: [11800, 11900, 11700], recovery: { t_ms: [100, 200, 300, 450], fresh_fraction: [0.5, 0.8, 0.95, 1] } },
};

t.test("bench plot - HTML is self-contained, PNG comes from the real headless Chromium", async (t) => {
  requireProgram("chromium");
  const dir = mkdtempSync(join(tmpdir(), "banyan-plot-test-"));
  writePlot(join(dir, "p.html"), result);
  const html = readFileSync(join(dir, "p.html"), "utf8");
  t.match(html, /uPlot/);
  t.notMatch(html, /<script src=/, "no external script");
  writePlot(join(dir, "p.png"), result);
  const png = readFileSync(join(dir, "p.png"));
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "a PNG file");
  t.ok(png.length > 10_000, `${png.length} bytes: the charts were drawn`);
  t.match(formatBenchTable(result), /failover\s+2 relays killed: detected after 5 ms, every other node fresh after 450 ms, 0 nodes lost/);
  // Every missed goal is flagged on its row and named in one line: the agent here takes 0.4 % and 80 MB.
  t.match(formatBenchTable(result), /agent \(procfs, real process\)\s+0\.40 % of one core, 80 MB RSS\s+\[goal ≤ 0\.3 %, ≤ 60 MB: MISSED\]/);
  t.match(formatBenchTable(result), /failover .*\[goal < 3 s, 0 lost: met\]/);
  t.match(formatBenchTable(result), /^GOALS MISSED: \d+ of \d+ \([^)]*agent \(procfs, real process/m);
});
