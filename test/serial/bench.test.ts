import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";
import { requireProgram } from "../fixtures/programs.js";

t.test("bench - a small run writes every key of the result, each sane, and a plot; --remote-write: the roots write to a real receiver, its cost against a direct scrape, an outage caught up with nothing lost", async (t) => {
  requireProgram("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "banyan-bench-test-"));
  const json = join(dir, "out.json");
  const html = join(dir, "out.html");
  const res = banyan(
    ["bench", "--nodes", "200", "--series", "50", "--duration-s", "3", "--scenario", "all", "--kill-relays", "2", "--baseline-prometheus", "--remote-write", "prometheus", "--remote-write-outage-s", "3", "--remote-write-refresh-ms", "3000", "--base-port", "21000", "--json", json, "--plot", html, "--no-progress"],
    undefined,
    300_000,
  );
  t.equal(res.status, 0, res.stderr.slice(-2000));
  t.match(res.stdout, /wire, leaf links\s+\d+ B per node per interval/, "the human table");
  const r = JSON.parse(readFileSync(json, "utf8"));
  const positive = (path: string): void => {
    const v = path.split(".").reduce((o: Record<string, unknown>, k) => o?.[k] as Record<string, unknown>, r) as unknown as number;
    t.ok(typeof v === "number" && Number.isFinite(v) && v > 0, `${path} = ${v} is a positive number`);
  };
  t.equal(r.nodes, 200);
  // 10,000 series a root: their memory is within a root's RSS noise (once read as -1,010 B a series),
  // so the figure is only a number here, and the run says it means little.
  t.ok(Number.isFinite(r.root_bytes_per_series), `root_bytes_per_series = ${r.root_bytes_per_series} is a number`);
  if (r.root_bytes_per_series * r.root_series < 64 * 2 ** 20) t.match(r.unreliable.join("\n"), /root_bytes_per_series means little/, "and the run says it means little at this size");
  t.equal(r.series_per_node, 50);
  t.equal(r.interval_ms, 1000);
  t.ok(Array.isArray(r.unreliable) && r.unreliable.every((x: unknown) => typeof x === "string"), `unreliable: ${JSON.stringify(r.unreliable)}`);
  for (const k of [
    "bytes_per_node_per_interval",
    "prometheus_text_bytes_per_node_per_interval",
    "prometheus_gzip_bytes_per_node_per_interval",
    "latency_ms.p50",
    "latency_ms.p99",
    "latency_ms.max",
    "root_render_ms",
    "root_render_first_ms",
    "root_render_gzip_ms",
    "relay_cpu_us_per_frame",
    "agent.rss_mb",
    "failover.recovery_ms",
    "start.whole_ms",
    "start.key_bytes",
    "root_restart.visible_ms",
    "root_restart.back_home_ms",
    "root_restart.key_bytes",
    "prometheus_baseline.roots.cpu_cores",
    "prometheus_baseline.direct.cpu_cores",
    "prometheus_baseline.cpu_ratio",
  ]) positive(k);
  t.ok(Number.isFinite(r.agent.cpu_percent) && r.agent.cpu_percent >= 0, "agent.cpu_percent");
  t.equal(r.failover.nodes_lost, 0, "no node lost in the failover");
  for (const k of ["root_scrape_cpu_us_per_series", "root_scrape_first_cpu_us_per_series"]) t.ok(Number.isFinite(r[k]) && r[k] >= 0, `the roots' CPU per series for a scrape is measured: ${k} = ${r[k]}`);
  for (const k of ["nodes_marked_down", "start.nodes_marked_down", "start.failovers", "root_restart.nodes_marked_down", "root_restart.peak_p99_ms"]) {
    const v = k.split(".").reduce((o: Record<string, unknown>, x) => o?.[x] as Record<string, unknown>, r) as unknown as number;
    t.ok(typeof v === "number" && v >= 0, `${k} = ${v} is a count`);
  }
  t.match(res.stdout, /start \(all in one tick\)\s+every node up after \d+ ms/, "the start's figures in the table");
  t.match(res.stdout, /capacity model \(README\)/, "the capacity model's constants and predictions");
  t.match(res.stdout, /^CAPACITY MODEL EXTRAPOLATED: this run had 200 nodes; a run under 2,000/m, "a run this small says its model is an extrapolation");
  t.ok(r.latency_ms.p50 <= r.latency_ms.p99 && r.latency_ms.p99 <= r.latency_ms.max, "p50 ≤ p99 ≤ max");
  t.ok(r.machine.node.startsWith("v") && typeof r.machine.commit === "string", "machine and commit recorded");
  t.ok(existsSync(html) && readFileSync(html, "utf8").includes("uPlot"), "a self-contained plot");

  // --remote-write in the same run (its direct-scrape comparison is the baseline's).
  const rw = r.remote_write as Record<string, number | string>;
  t.equal(rw.receiver, "prometheus");
  for (const k of ["receiver_cpu_cores", "receiver_rss_mb", "samples_per_s", "bytes_per_sample", "root_cpu_us_per_sample_update", "direct_cpu_cores", "cpu_ratio_vs_direct", "catch_up_ms", "root_rss_mb_before_outage", "root_rss_mb_end_of_outage"]) {
    t.ok(typeof rw[k] === "number" && Number.isFinite(rw[k]) && (rw[k] as number) > 0, `remote_write.${k} = ${rw[k]}`);
  }
  t.equal(rw.samples_lost, 0, `nothing lost in the outage (by reason: ${JSON.stringify(rw.samples_lost_by_reason)})`);
  t.match(res.stdout, /remote_write ratio\s+[\d.]+× the CPU of a Prometheus scraping every node directly/);
});
