import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import { generateCentralTopology } from "../src/tools/topology/index.js";
import { generateTopology } from "../src/tools/topology/index.js";
import { formatTopology } from "../src/topology/topology-file.js";
import { silentLogger } from "../src/core/logger.js";
import { parseRootConfig } from "../src/root/index.js";
import { SyntheticFeed } from "./synthetic-feed.js";
import { startRoot, type RootDaemon } from "../src/root/index.js";

/**
 * The central link's cost: a cluster root fed `nodes` synthetic nodes (node_exporter's names, `series`
 * each, 10 % changing per tick) at 1 s, uplinking to a real central root over loopback gRPC; bytes of
 * frame payload per interval on the central link with the filter raw, filtered (load, available
 * memory, CPU seconds), and aggregates-only (four aggregates by job), against the bytes the nodes
 * sent the cluster root, and the cluster root's ingest time with each.
 *
 *   node dist/bench/central-figures.js [nodes=1000] [series=500] [ticks=20]
 */
const nodes = Number(process.argv[2] ?? 1000);
const series = Number(process.argv[3] ?? 500);
const ticks = Number(process.argv[4] ?? 20);
const BASE = 30700;
const dir = mkdtempSync(join(tmpdir(), "banyan-central-fig-"));
const names = Array.from({ length: nodes }, (_, k) => `n${String(k).padStart(5, "0")}`);
const centralTopology = generateCentralTopology({ clusters: [{ name: "site", roots: ["r1"] }], roots: ["central1"], local: BASE });
const centralFile = join(dir, "central.json");
writeFileSync(centralFile, formatTopology(centralTopology));
const { topology } = generateTopology({ nodes: names, roots: ["r1"], trees: 1, local: BASE + 10 });
const aggregates = [
  { record: "job:node_load1:sum", expr: "sum", metric: "node_load1", by: ["job"] },
  { record: "job:node_memory_MemAvailable_bytes:sum", expr: "sum", metric: "node_memory_MemAvailable_bytes", by: ["job"] },
  { record: "job:node_context_switches_total:sum", expr: "sum", metric: "node_context_switches_total", by: ["job"] },
  { record: "job:node_up:count", expr: "count", metric: "node_load1", by: ["job"] },
];

const uplinkBytes = async (r: RootDaemon): Promise<number> => Number(/^banyan_uplink_payload_bytes_sent_total (\S+)$/m.exec(await r.registry.metrics())?.[1] ?? 0);

const modes = {
  raw: { series: "raw" },
  filtered: { series: "raw", allow: ['{__name__=~"node_load.*|node_memory_MemAvailable_bytes|node_cpu_seconds_total"}'] },
  aggregates: { series: "aggregates" },
};
for (const [mode, forward] of Object.entries(modes)) {
  const central = await startRoot({ topology: centralTopology, topologySource: centralFile, name: "central1", log: silentLogger(), registry: new Registry() }, parseRootConfig({ intervalMs: 1000 }));
  const root = await startRoot(
    { topology, topologySource: "bench", name: "r1", log: silentLogger(), registry: new Registry() },
    parseRootConfig({ intervalMs: 1000, aggregates, central: { topology: centralFile, forward } }),
  );
  const feed = new SyntheticFeed(names, series);
  let before = 0;
  let measuredNodeBytes = 0;
  let acceptMs = 0;
  const t0 = Date.now();
  for (let tick = 0; tick < ticks; tick++) {
    const now = t0 + tick * 1000;
    // Warm-up: the first ticks carry the keyframes; the figure is of the steady state after them.
    if (tick === 3) {
      before = await uplinkBytes(root);
      measuredNodeBytes = feed.bytes;
    }
    for (const frame of feed.frames(now)) {
      const a0 = performance.now();
      root.store.accept([frame], []);
      if (tick >= 3) acceptMs += performance.now() - a0;
    }
    await new Promise((r) => setTimeout(r, 1000 - ((Date.now() - t0) % 1000)));
  }
  await new Promise((r) => setTimeout(r, 1500));
  const sent = (await uplinkBytes(root)) - before;
  const perInterval = sent / (ticks - 3);
  const nodePerInterval = (feed.bytes - measuredNodeBytes) / (ticks - 3);
  const centralSeries = [...central.store.originStates].reduce((a, st) => a + st.seriesCount, 0);
  console.log(
    `${mode}: ${nodes} nodes × ${series} series: central link ${Math.round(perInterval)} B per 1 s interval (${(perInterval / nodes).toFixed(1)} B per node), ` +
      `nodes → cluster root ${Math.round(nodePerInterval)} B per interval; ${centralSeries} series at the central root; ` +
      `the cluster root's ingest (apply + forward) ${(acceptMs / (ticks - 3)).toFixed(1)} ms per interval`,
  );
  await root.stop();
  await central.stop();
}
rmSync(dir, { recursive: true, force: true });
