import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchResult } from "./run-bench.js";
import { formatCapacity } from "./capacity-model.js";
import type { StormFigures } from "./storm-scenario.js";

const f = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");

const storm = (s: StormFigures, what: string): string => `${what}; peak p99 ${f(s.peak_p99_ms)} ms, ${(s.key_bytes / 1e6).toFixed(1)} MB of keyframes, ${s.nodes_marked_down} nodes marked down, ${s.failovers} failovers`;

/** A row's goal and whether this run met it (null: the figure alone cannot say). */
interface Goal {
  readonly text: string;
  readonly met: boolean | null;
}

const goal = (text: string, met: boolean | null): Goal => ({ text, met });
const NO_GOAL: Goal = { text: "", met: null };

/** The human table: each figure beside the goal it is judged against, flagged when missed; then the goals missed, in one line. */
export function formatBenchTable(r: BenchResult): string {
  const rows: [string, string, Goal][] = [
    ["cluster", `${r.nodes} nodes × ${r.series_per_node} series, ${r.trees} trees of depth ${r.depth}, ${r.params.roots} roots; ${r.real_relays} real relays (depth ≤ ${r.real_relay_depth}), interval ${r.interval_ms} ms`, NO_GOAL],
    ["wire, leaf links", `${f(r.bytes_per_node_per_interval)} B per node per interval (Prometheus text ${r.prometheus_text_bytes_per_node_per_interval} B, gzip ${r.prometheus_gzip_bytes_per_node_per_interval} B: ${f(r.ratio_vs_gzip, 1)}× smaller than gzip)`, goal("≥ 100× smaller than gzip", r.ratio_vs_gzip >= 100)],
    ["wire, root links", `${f(r.root_link_bytes_per_node_per_interval)} B per node per interval`, NO_GOAL],
    ["latency sample → root", `p50 ${f(r.latency_ms.p50)} ms, p99 ${f(r.latency_ms.p99)} ms, max ≤ ${f(r.latency_ms.max)} ms over ${r.real_relay_depth} real relay hops`, goal("p99 < 1 s at depth 14", r.latency_ms.p99 < 1000)],
    ["steady", `${r.nodes_marked_down} nodes marked down in ${r.params.durationS} s`, goal("0", r.nodes_marked_down === 0)],
    ["relays", `${f(r.relay_cpu_us_per_frame, 1)} µs CPU per forwarded frame (own sampling included), ${f(r.relay_cpu_us_per_child_per_interval, 1)} µs per child per interval; RSS ${r.relay_rss_mb.map((x) => f(x)).join(", ")} MB`, goal("≤ 20 µs per child frame", r.relay_cpu_us_per_frame <= 20)],
    ["roots", `${f(r.root_cpu_us_per_sample_update, 2)} µs CPU per sample update; ${r.root_series} series, ${f(r.root_bytes_per_series)} B per series; RSS ${r.root_rss_mb.map((x) => f(x)).join(", ")} MB`, NO_GOAL],
    ["root /metrics", `${f(r.root_render_ms)} ms for ${(r.root_render_bytes / 1e6).toFixed(1)} MB, ${f(r.root_series / r.params.roots)} series a root, an interval after the last scrape (largest root); the first scrape, every chunk built: ${f(r.root_render_first_ms)} ms (${f(r.root_scrape_first_cpu_us_per_series, 2)} µs of the root's CPU per series); gzip-encoded: ${f(r.root_render_gzip_ms)} ms, ${f(r.root_scrape_cpu_us_per_series, 2)} µs of the root's CPU per series`, goal("1M series < 0.5 s", (r.root_render_ms / Math.max(1, r.root_series / r.params.roots)) * 1e6 < 500)],
    ["agent (procfs, real process)", `${f(r.agent.cpu_percent, 2)} % of one core, ${f(r.agent.rss_mb)} MB RSS`, goal("≤ 0.3 %, ≤ 60 MB", r.agent.cpu_percent <= 0.3 && r.agent.rss_mb <= 60)],
    ["simulator", `${f(r.simulator_cpu_cores, 2)} cores for the simulated leaves (not Banyan's cost)`, NO_GOAL],
    ["start (all in one tick)", storm(r.start, `every node up after ${r.start.whole_ms === null ? "n/a (never)" : `${r.start.whole_ms} ms`}`), goal("no node marked down", r.start.nodes_marked_down === 0)],
  ];
  if (r.failover) rows.push(["failover", `${r.failover.killed} relays killed: detected after ${f(r.failover.detection_ms)} ms, every other node fresh after ${f(r.failover.recovery_ms)} ms, ${r.failover.nodes_lost} nodes lost`, goal("< 3 s, 0 lost", r.failover.recovery_ms < 3000 && r.failover.nodes_lost === 0)]);
  if (r.root_restart) {
    const rr = r.root_restart;
    rows.push(["root restart", storm(rr, `${(rr.share * 100).toFixed(1)} % of the nodes: fresh again after ${f(rr.visible_ms)} ms, back at it after ${f(rr.back_home_ms)} ms, ${rr.nodes_lost} lost`), goal("whole < 30 s, no node marked down", rr.visible_ms < 30_000 && rr.nodes_marked_down === 0)]);
  }
  const pb = r.prometheus_baseline;
  if (pb) {
    rows.push(["Prometheus → roots", `${pb.roots.targets} targets, ${pb.roots.series} series: ${f(pb.roots.cpu_cores, 3)} cores, ${f(pb.roots.rss_mb)} MB, scrape ${f(pb.roots.scrape_ms_avg, 1)} ms avg, ${pb.roots.failed_scrapes} failed`, NO_GOAL]);
    rows.push(["Prometheus → nodes", `${pb.direct.targets} targets, ${pb.direct.series} series: ${f(pb.direct.cpu_cores, 3)} cores, ${f(pb.direct.rss_mb)} MB, scrape ${f(pb.direct.scrape_ms_avg, 1)} ms avg, ${pb.direct.failed_scrapes} failed`, NO_GOAL]);
    rows.push(["Prometheus ratio", `${f(pb.cpu_ratio, 2)}× the CPU and ${f(pb.rss_ratio, 2)}× the memory when scraping nodes directly`, goal("≥ 5× cheaper via roots", pb.cpu_ratio >= 5)]);
  }
  const rw = r.remote_write;
  if (rw) {
    rows.push([`remote_write → ${rw.receiver}`, `${f(rw.samples_per_s)} samples/s (changes and refreshes), ${f(rw.bytes_per_sample, 1)} B per sample on the wire; the receiver ${f(rw.receiver_cpu_cores, 3)} cores, ${f(rw.receiver_rss_mb)} MB; roots ${f(rw.root_cpu_us_per_sample_update, 2)} µs CPU per update with it on`, NO_GOAL]);
    rows.push(["remote_write ratio", `${f(rw.cpu_ratio_vs_direct, 2)}× the CPU of a Prometheus scraping every node directly (${f(rw.direct_cpu_cores, 3)} cores, ${f(rw.direct_rss_mb)} MB)`, goal("≤ 0.2×", rw.cpu_ratio_vs_direct <= 0.2)]);
    rows.push(["remote_write outage", `receiver away ${rw.outage_s} s: caught up ${f(rw.catch_up_ms)} ms after it came back, ${rw.samples_lost} samples lost; roots' memory ${f(rw.root_rss_mb_before_outage)} → ${f(rw.root_rss_mb_end_of_outage)} MB`, goal("0 lost, memory flat", rw.samples_lost === 0 && rw.root_rss_mb_end_of_outage <= rw.root_rss_mb_before_outage * 1.25)]);
  }
  const lab = r.lab;
  if (lab) {
    rows.push(["emulated hosts", `${lab.hosts} hosts on ${lab.subnet} (${lab.racks} racks); on the wire (TCP/IP included): ${f(lab.wire_leaf_bytes_per_node_per_interval)} B per node per interval from the leaves, ${f(lab.wire_root_bytes_per_node_per_interval)} B into the roots, ${f(lab.wire_agent_bytes_per_interval)} B from the real agent`, NO_GOAL]);
    const b = lab.blackhole;
    if (b) rows.push(["blackhole", `${b.relay} silent ${b.fault_s} s: its ${b.children} nodes fresh elsewhere after ${f(b.all_fresh_ms)} ms (oldest sample ${f(b.max_child_staleness_ms)} ms), ${b.marked_down_by_roots} marked down (itself included); back under it after ${f(b.back_home_ms)} ms (oldest sample meanwhile ${f(b.max_staleness_moving_back_ms)} ms)${b.agent_counters ? `; the real agent's ${b.agent_counters.series} CPU counters went backwards ${b.agent_counters.backwards} times in ${b.agent_counters.readings} readings` : ""}`, goal("≤ 3 s, none of them down", b.all_fresh_ms <= 3000 && b.marked_down_by_roots <= 1)]);
    const p = lab.partition;
    if (p) rows.push(["partition", `${p.rack} (${p.rack_hosts} hosts, ${p.rack_nodes} nodes) cut off ${p.fault_s} s: ${p.outside_marked_down} nodes outside shown down, relays +${f(p.relay_rss_growth_mb, 1)} MB; whole ${f(p.whole_ms)} ms after the heal`, goal("0 outside, whole ≤ 10 s", p.outside_marked_down === 0 && p.whole_ms <= 10_000)]);
    const i = lab.root_isolated;
    if (i) rows.push(["root isolated", `${i.root} cut off ${i.fault_s} s: its ${i.nodes} nodes fresh at the other roots after ${f(i.all_fresh_ms)} ms (oldest sample ${f(i.max_staleness_ms)} ms); back at it ${f(i.back_ms)} ms after the heal (oldest sample meanwhile ${f(i.max_staleness_moving_back_ms)} ms); a Prometheus scraping every root each second: longest gap ${f(i.prometheus_max_gap_cut_ms)} ms while cut off, ${f(i.prometheus_max_gap_moving_back_ms)} ms through the move back`, goal("no hole", null)]);
    if (lab.thin_uplink) rows.push(["thin uplink", `${lab.thin_uplink.root}'s link at ${lab.thin_uplink.mbit} Mbit/s through the start: see "start"`, NO_GOAL]);
    for (const l of lab.lossy?.levels ?? []) rows.push([`lossy ${l.percent} %`, `${l.marked_down} nodes marked down in ${lab.lossy!.fault_s} s; sample→root p99 ${f(l.p99_ms)} ms, max ≤ ${f(l.max_ms)} ms`, l.percent <= 1 ? goal("0 down", l.marked_down === 0) : NO_GOAL]);
    const k = lab.skew;
    if (k) rows.push(["skew", `${k.ahead} +${k.skew_s} s, ${k.behind} -${k.skew_s} s: newest samples ${f(k.ahead_offset_ms)} and ${f(k.behind_offset_ms)} ms from now at the roots, up ${k.ahead_up}/${k.behind_up}; ${k.marked_down} nodes marked down`, goal("the others unaffected", k.marked_down === 0)]);
    const d = lab.latency;
    if (d) rows.push(["latency", `+${d.delay_ms} ms a hop: sample→root p50 ${f(d.p50_ms)} ms, p99 ${f(d.p99_ms)} ms (before ${f(d.p99_before_ms)} ms; ${d.hops} hops × ${d.delay_ms} ms), ${d.marked_down} marked down`, NO_GOAL]);
  }
  const w = Math.max(...rows.map((x) => x[0].length));
  const m = r.machine;
  const constants = {
    bytesPerNodePerInterval: r.bytes_per_node_per_interval,
    rootUsPerUpdate: r.root_cpu_us_per_sample_update,
    rootBytesPerSeries: r.root_bytes_per_series,
    relayUsPerFrame: r.relay_cpu_us_per_frame,
    rootScrapeUsPerSeries: r.root_scrape_cpu_us_per_series,
    rootScrapeFirstUsPerSeries: r.root_scrape_first_cpu_us_per_series,
    changeRate: r.params.changeRate,
  };
  const model = Object.values(constants).every(Number.isFinite)
    ? [
        ...(r.nodes < MODEL_MIN_NODES
          ? [`CAPACITY MODEL EXTRAPOLATED: this run had ${r.nodes} nodes; a run under ${MODEL_MIN_NODES.toLocaleString("en-US")} measures per-frame and per-scrape costs that a large cluster amortises (and start-up costs it does not), so the sizes below are rough: measure at ≥ ${MODEL_MIN_NODES.toLocaleString("en-US")} nodes (or scripts/device-bench.sh) before sizing a cluster`]
          : []),
        `capacity model (README) from this run's constants: ${f(constants.bytesPerNodePerInterval)} B per node per interval, ${f(constants.rootUsPerUpdate, 2)} µs per update and ${f(constants.rootBytesPerSeries)} B per series at a root, ${f(constants.rootScrapeUsPerSeries, 2)} µs per series for its gzip scrape (${f(constants.rootScrapeFirstUsPerSeries, 2)} every chunk built), ${f(constants.relayUsPerFrame, 1)} µs per forwarded frame`, formatCapacity(r.series_per_node, r.interval_ms, constants),
      ]
    : [];
  const unreliable = (r.unreliable ?? []).map((why) => `UNRELIABLE: ${why}`);
  return [`Banyan bench — ${m.date}, node ${m.node}, ${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GiB, banyan ${m.banyan} (${m.commit})`, ...unreliable, ...rows.map(([k, v, g]) => `${k.padEnd(w)}  ${v}${g.text ? `   [goal ${g.text}${g.met === false ? ": MISSED" : g.met === true ? ": met" : ""}]` : ""}`), goalsLine(rows), ...model].join("\n") + "\n";
}

/** One line: how many goals this run met, and which it missed. */
function goalsLine(rows: readonly (readonly [string, string, Goal])[]): string {
  const judged = rows.filter(([, , g]) => g.met !== null);
  const missed = judged.filter(([, , g]) => g.met === false).map(([k]) => k);
  return missed.length === 0 ? `goals: all ${judged.length} met` : `GOALS MISSED: ${missed.length} of ${judged.length} (${missed.join(", ")})`;
}

/** Runs smaller than this extrapolate to the model's 10,000-200,000 nodes with a warning. */
const MODEL_MIN_NODES = 2000;

/** A self-contained HTML page (uPlot inlined): latency over time, bytes per level, recovery timeline. */
export function benchHtml(r: BenchResult): string {
  const require = createRequire(import.meta.url);
  const js = readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js"), "utf8");
  const css = readFileSync(require.resolve("uplot/dist/uPlot.min.css"), "utf8");
  const data = JSON.stringify(r.timeline);
  const title = `Banyan bench: ${r.nodes} nodes × ${r.series_per_node} series (${r.machine.date}, ${r.machine.commit})`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title><style>${css}
body{font:14px system-ui,sans-serif;margin:16px;background:#fff;max-width:1140px}h1{font-size:18px}pre{background:#f4f4f4;padding:8px;font-size:12px;white-space:pre-wrap;overflow-wrap:anywhere}</style></head><body>
<h1>${title}</h1><div id="lat"></div><div id="bytes"></div><div id="rec"></div>
<pre>${formatBenchTable(r).replace(/&/g, "&amp;").replace(/</g, "&lt;")}</pre>
<script>${js}</script><script>
const d=${data};const W=Math.min(1100,innerWidth-40);
const si=v=>{const a=Math.abs(v);return a>=1e9?+(v/1e9).toFixed(1)+"G":a>=1e6?+(v/1e6).toFixed(1)+"M":a>=1e3?+(v/1e3).toFixed(1)+"k":String(+v.toFixed(3))};
const axes=(x,y)=>[{label:x},{label:y,size:80,values:(u,vs)=>vs.map(si)}];
new uPlot({title:"Sample → root latency",width:W,height:260,scales:{x:{time:false}},axes:axes("seconds into the steady window","ms"),series:[{label:"s"},{label:"p50 ms",stroke:"#2a7"},{label:"p99 ms",stroke:"#c33"}]},[d.t_s,d.latency_p50_ms,d.latency_p99_ms],document.getElementById("lat"));
new uPlot({title:"Bytes per second by level",width:W,height:260,scales:{x:{time:false}},axes:axes("seconds into the steady window","bytes per second"),series:[{label:"s"},{label:"leaf links B/s",stroke:"#36c"},{label:"root links B/s",stroke:"#e90"}]},[d.t_s,d.leaf_bytes_per_s,d.root_bytes_per_s],document.getElementById("bytes"));
if(d.recovery.t_ms.length)new uPlot({title:"Recovery after killing relays: share of nodes fresh again",width:W,height:260,scales:{x:{time:false}},axes:axes("ms after the kill","share of nodes"),series:[{label:"ms"},{label:"fresh",stroke:"#63c"}]},[d.recovery.t_ms,d.recovery.fresh_fraction],document.getElementById("rec"));
</script></body></html>`;
}

/** Writes the plot: .html as is, .png through headless Chromium (scripts/install-system-deps.sh installs it). */
export function writePlot(path: string, r: BenchResult): void {
  const html = benchHtml(r);
  if (!path.endsWith(".png")) {
    writeFileSync(path, html);
    return;
  }
  const chromium = spawnSync("sh", ["-c", "command -v chromium || command -v chromium-browser"], { encoding: "utf8" }).stdout.trim().split("\n")[0];
  if (!chromium) throw new Error("--plot *.png needs chromium: run scripts/install-system-deps.sh (as root), or write .html");
  const dir = mkdtempSync(join(tmpdir(), "banyan-plot-"));
  try {
    writeFileSync(join(dir, "plot.html"), html);
    const res = spawnSync(
      chromium,
      ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", `--user-data-dir=${dir}/profile`, "--window-size=1200,1500", `--screenshot=${path}`, `file://${dir}/plot.html`],
      { encoding: "utf8", timeout: 60_000 },
    );
    if (res.status !== 0) throw new Error(`chromium could not render the plot: ${res.stderr.slice(0, 500)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
