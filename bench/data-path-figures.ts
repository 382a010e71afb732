import { PerformanceObserver } from "node:perf_hooks";
import { toBinary, create } from "@bufbuild/protobuf";
import { execSync } from "node:child_process";
import { cpus } from "node:os";
import { gzipSync } from "node:zlib";
import { Registry } from "prom-client";
import { generateTopology } from "../src/tools/topology/index.js";
import { expandHostlist } from "../src/topology/hostlist.js";
import { topologyStats } from "../src/tools/topology/index.js";
import { parseAgentConfig } from "../src/agent/index.js";
import { SyntheticSource } from "../src/agent/index.js";
import { startAgent } from "../src/agent/index.js";
import { startRoot } from "../src/root/index.js";
import { silentLogger } from "../src/core/logger.js";
import { FrameKind, FrameSchema } from "../src/gen/banyan/v1/uplink_pb.js";
import { ExpositionCache } from "../src/root/exposition/index.js";
import { OriginState } from "../src/root/ingest/index.js";
import { PageBuffer } from "../src/root/exposition/index.js";
import { SharedPage } from "../src/root/exposition/index.js";
import { parseRootConfig } from "../src/root/index.js";
import { DeltaEncoder } from "../src/series/delta-encoder.js";
import { DEFAULT_SERIES_LIMITS } from "../src/series/payload.js";
import type { Payload } from "../src/series/payload.js";
import type { SeriesDef } from "../src/series/series-def.js";
import { encodePayload } from "../src/wire/payload-codec.js";
import { DEFAULT_WIRE_LIMITS } from "../src/wire/wire-limits.js";
import { AggregateEngine } from "../src/root/ingest/index.js";
import { RootStore } from "../src/root/ingest/index.js";
import { buildTemplates } from "./frame-templates.js";
import type { Frame } from "../src/gen/banyan/v1/uplink_pb.js";

/**
 * The data path's figures (issue: data path): wire bytes per node per interval against Prometheus
 * text and gzip, the root's render time at 100k and 1M series, and sample-to-root latency at depth ≥ 5.
 * Seeded data; prints the machine and commit it ran on.
 *
 *   node --expose-gc dist/bench/data-path-figures.js [wire] [render] [ingest] [latency]
 */
const which = new Set(process.argv.slice(2));
const all = which.size === 0;

function machine(): string {
  let commit = "unknown";
  try {
    commit = execSync("git rev-parse --short HEAD", { stdio: ["ignore", "pipe", "ignore"] }).toString().trim();
  } catch {
    // not a checkout
  }
  return `${new Date().toISOString()} node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, commit ${commit}`;
}

/** One node's stream: encoder + codec + protobuf envelope, as it leaves the node. */
function wireFigures(series: number, changeRate: number, ticks: number, keyframeEvery: number): void {
  const enc = new DeltaEncoder();
  const src = new SyntheticSource({ series, changeRate, seed: 1, node: "node0001" });
  const defs: SeriesDef[] = [];
  const target = { define: (d: SeriesDef) => (defs.push(d), enc.define(d)), set: (id: number, v: number) => enc.set(id, v), remove: (id: number) => enc.remove(id) };
  let deltaBytes = 0;
  let deltas = 0;
  let keyBytes = 0;
  let keys = 0;
  let changed = 0;
  for (let tick = 0; tick < ticks; tick++) {
    src.collect(target);
    if (tick > 0 && tick % keyframeEvery === 0) enc.requestKeyframe("values");
    const f = enc.encode();
    if (f === null) continue;
    const w = encodePayload(f.payload);
    // As the leaf sends it on its own link: the epoch is the Hello's, so it travels as 0.
    const frame = create(FrameSchema, { origin: "node0001", epoch: 0n, seq: BigInt(tick + 1), timeMs: 1795257958086n, kind: f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA, codec: w.codec, payload: w.bytes });
    const bytes = toBinary(FrameSchema, frame).length;
    if (f.kind !== "delta") {
      keyBytes += bytes;
      keys++;
    } else {
      deltaBytes += bytes;
      deltas++;
      changed += f.payload.ids.length + f.payload.rawIds.length;
    }
  }
  // The same samples as Prometheus text (what a scrape of this node would carry), and gzipped.
  const cache = new ExpositionCache();
  const st = new OriginState("node0001", cache, DEFAULT_SERIES_LIMITS);
  enc.requestKeyframe();
  st.apply(enc.encode()!.payload, "key");
  st.setVisible(true);
  const text = cache.renderText("text");
  const gz = gzipSync(text).length;
  const perInterval = (deltaBytes + keyBytes) / ticks;
  console.log(`\nwire: ${series} series, change rate ${changeRate}, ${ticks} ticks, a keyframe every ${keyframeEvery}`);
  console.log(`  delta frame   ${(deltaBytes / deltas).toFixed(0)} B on average (${(changed / deltas).toFixed(1)} series changed: ${(deltaBytes / changed).toFixed(2)} B per changed series)`);
  console.log(`  keyframe      ${(keyBytes / keys).toFixed(0)} B`);
  console.log(`  per interval  ${perInterval.toFixed(0)} B with keyframes amortised`);
  console.log(`  Prometheus text ${text.length} B, gzip ${gz} B per scrape of the same series`);
  console.log(`  ratio         ${(text.length / perInterval).toFixed(0)}× smaller than text, ${(gz / perInterval).toFixed(1)}× smaller than gzip`);
}

async function renderFigures(origins: number, series: number): Promise<void> {
  // Only the root's side stays in memory: each origin's encoder makes its keyframe and the frame of
  // one later tick, then is dropped, as it would live on another machine.
  globalThis.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const cache = new ExpositionCache();
  const states: OriginState[] = [];
  const nextTick: (Payload | null)[] = [];
  /** The ticks after that one, for the steady scrapes below. */
  const STEADY_TICKS = 10;
  const later: (Payload | null)[][] = [];
  for (let k = 0; k < origins; k++) {
    const enc = new DeltaEncoder();
    const src = new SyntheticSource({ series, changeRate: 0.1, seed: 1, node: `node${k}` });
    const target = { define: (d: SeriesDef) => enc.define(d), set: (id: number, v: number) => enc.set(id, v), remove: (id: number) => enc.remove(id) };
    src.collect(target);
    const st = new OriginState(`node${String(k).padStart(5, "0")}`, cache, DEFAULT_SERIES_LIMITS);
    st.apply(enc.encode()!.payload, "key");
    st.setVisible(true);
    src.collect(target);
    nextTick.push(enc.encode()?.payload ?? null);
    later.push(
      Array.from({ length: STEADY_TICKS }, () => {
        src.collect(target);
        return enc.encode()?.payload ?? null;
      }),
    );
    states.push(st);
  }
  // As the root's HTTP server does it: chunks, then one page in a buffer kept between scrapes.
  const pages = new PageBuffer();
  const time = (label: string): number => {
    const t0 = process.hrtime.bigint();
    const page = pages.assemble(cache.render("text"));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`  ${label.padEnd(38)} ${ms.toFixed(0).padStart(6)} ms  ${(page.body.length / 1e6).toFixed(1)} MB`);
    page.release();
    return ms;
  };
  console.log(`\nrender: ${origins} origins × ${series} series = ${(origins * series).toLocaleString()} series`);
  time("first scrape (every chunk built)");
  globalThis.gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  time("no change since the last scrape");
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < origins; k++) if (nextTick[k]) states[k]!.apply(nextTick[k]!, "delta");
  const applyMs = Number(process.hrtime.bigint() - t0) / 1e6;
  time("after one tick (10 % of series moved)");
  console.log(`  applying that tick's ${origins} frames: ${applyMs.toFixed(0)} ms; root heap ≈ ${((heapAfter - heapBefore) / (origins * series)).toFixed(0)} B per series (with --expose-gc)`);

  // As the root serves it: rendered and assembled in slices. The longest slice is how long
  // ingestion waits at most (GC pauses aside: --trace-gc shows them), against the page's wall time.
  const shared = new SharedPage();
  shared.acquire("text", () => cache.renderSliced("text")).then((h) => h.release(), () => undefined);
  await new Promise((r) => setTimeout(r, 2000));
  for (let k = 0; k < origins; k++) if (nextTick[k]) states[k]!.apply(nextTick[k]!, "delta");
  const slices: number[] = [];
  let sliceStart = performance.now();
  const realSetImmediate = globalThis.setImmediate;
  const timed = ((fn: (...args: unknown[]) => void, ...args: unknown[]) => {
    slices.push(performance.now() - sliceStart);
    return realSetImmediate(() => {
      sliceStart = performance.now();
      fn(...args);
    });
  }) as typeof setImmediate;
  globalThis.setImmediate = timed;
  const t1 = performance.now();
  sliceStart = t1;
  const hold = await shared.acquire("text", () => cache.renderSliced("text"));
  slices.push(performance.now() - sliceStart);
  const wallMs = performance.now() - t1;
  globalThis.setImmediate = realSetImmediate;
  hold.release();
  console.log(`  sliced, after a tick (as served)        ${wallMs.toFixed(0).padStart(6)} ms  ${(hold.body.length / 1e6).toFixed(1)} MB in ${slices.length} slices, the longest ${Math.max(...slices).toFixed(0)} ms`);

  // Steady: a tick (10 % moved), then a scrape as served, again and again; the collector's time with
  // them (chunks that moved are written back in place, so a scrape allocates little).
  let gcMs = 0;
  const gcs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcMs += e.duration;
  });
  gcs.observe({ entryTypes: ["gc"] });
  let scrapeMs = 0;
  for (let t = 0; t < STEADY_TICKS; t++) {
    for (let k = 0; k < origins; k++) if (later[k]![t]) states[k]!.apply(later[k]![t]!, "delta");
    const s0 = performance.now();
    (await shared.acquire("text", () => cache.renderSliced("text"))).release();
    scrapeMs += performance.now() - s0;
  }
  await new Promise((r) => setTimeout(r, 50)); // the observer's last entries
  gcs.disconnect();
  console.log(`  steady, ${STEADY_TICKS} ticks each scraped (as served) ${(scrapeMs / STEADY_TICKS).toFixed(0).padStart(6)} ms a scrape; the collector ${(gcMs / STEADY_TICKS).toFixed(0)} ms a tick`);
}

/**
 * The root's ingest alone (no gRPC): nodes' real encoded frames, as relays batch them, through
 * RootStore.accept on a moving clock, with its metrics, liveness and page cache. CPU per applied
 * sample update, over ticks after every node's keyframe.
 */
async function ingestFigures(nodes: number, series: number, changeRate: number, ticks: number): Promise<void> {
  const period = 60;
  const templates = buildTemplates({ count: 8, series, changeRate, precision: 0.001, seed: 1, period });
  let now = 1_000_000_000;
  const registry = new Registry();
  const store = new RootStore(
    { deadAfterMs: 3000, forgetAfterMs: 600_000, intervalMs: 1000, resyncIntervalMs: 1000, keyframeIntervalMs: 60_000, resyncPerS: 1000, resyncBurst: 200, limits: DEFAULT_WIRE_LIMITS, clock: () => now },
    new AggregateEngine([]),
    silentLogger(),
    registry,
  );
  let resyncs = 0;
  store.connectDownlink({ resync: (o) => void (resyncs += o.length) });
  const names = Array.from({ length: nodes }, (_, k) => `node${String(k).padStart(5, "0")}`);
  const batch = 64;
  const send = (tick: number, keyed: boolean): void => {
    for (let k = 0; k < nodes; k += batch) {
      const frames: Frame[] = [];
      for (let j = k; j < Math.min(nodes, k + batch); j++) {
        const t = templates[j % templates.length]!;
        const p = keyed ? t.keys[tick % period]! : tick % period === 0 ? t.periodicKey : t.deltas[tick % period];
        if (p === null || p === undefined) continue;
        const kind = keyed ? FrameKind.KEY : tick % period === 0 ? FrameKind.VALUES : FrameKind.DELTA;
        frames.push(create(FrameSchema, { origin: names[j]!, epoch: 1n, seq: BigInt(tick + 1), timeMs: BigInt(now - 50), kind, codec: p.codec, payload: p.bytes }));
      }
      store.accept(frames, [], store);
    }
  };
  const updatesTotal = async (): Promise<number> => (await registry.getSingleMetric("banyan_root_series_updates_total")!.get()).values[0]?.value ?? 0;
  const k0 = process.cpuUsage();
  send(0, true);
  const k1 = process.cpuUsage(k0);
  const updates0 = (await updatesTotal());
  globalThis.gc?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let tick = 1; tick <= ticks; tick++) {
    now += 1000;
    send(tick, false);
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - t0;
  const updates = (await updatesTotal()) - updates0;
  const us = cpu.user + cpu.system;
  console.log(`\ningest: ${nodes} nodes × ${series} series, change rate ${changeRate}, ${ticks} ticks through RootStore.accept (no gRPC)`);
  console.log(`  keyframes: ${((k1.user + k1.system) / nodes).toFixed(0)} µs CPU per ${series}-series keyframe (definitions and all, as after a start or a root restart); ${resyncs} keyframes asked for`);
  console.log(`  ${updates.toLocaleString()} updates in ${(nodes * ticks).toLocaleString()} frames: ${(us / updates).toFixed(3)} µs CPU per update (${(wall * 1000 / updates).toFixed(3)} µs wall), ${(us / nodes / ticks).toFixed(1)} µs per frame; ${(1 / (us / updates)).toFixed(2)}M updates/s per core`);
  const refused = (await registry.getMetricsAsJSON()).filter((m) => /dropped|decode_errors|resyncs_requested/.test(m.name)).flatMap((m) => m.values.filter((v) => v.value > 0).map((v) => `${m.name}${JSON.stringify(v.labels)} ${v.value}`));
  if (refused.length > 0) console.log(`  refused or dropped: ${refused.join(", ")}`);
  store.stop();
}

async function latencyFigures(nodes: number, intervalMs: number, seconds: number): Promise<void> {
  const { topology } = generateTopology({ nodes: expandHostlist(`n[001-${String(nodes).padStart(3, "0")}]`), roots: ["r1"], trees: 1, local: 31000 });
  const depth = topologyStats(topology).totals.maxDepth;
  const log = silentLogger();
  const root = await startRoot({ topology, topologySource: "bench", name: "r1", log, registry: new Registry() }, parseRootConfig({ intervalMs }));
  const lat: number[] = [];
  const accept = root.store.accept.bind(root.store);
  root.store.accept = (frames, alive) => {
    const now = Date.now();
    for (const f of frames) lat.push(now - Number(f.timeMs));
    accept(frames, alive);
  };
  const agents = [];
  for (const n of topology.nodes.keys()) {
    agents.push(await startAgent({ topology, topologySource: "bench", name: n, log, registry: new Registry() }, parseAgentConfig({ source: "synthetic", intervalMs, synthetic: { series: 500 } })));
  }
  await new Promise((r) => setTimeout(r, 3000));
  lat.length = 0;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const a of agents.reverse()) await a.stop(50);
  await root.stop();
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  console.log(`\nlatency: ${nodes} agents in one tree of depth ${depth}, ${intervalMs} ms interval, flush 20 ms, one process, ${lat.length} frames over ${seconds} s`);
  console.log(`  sample → root  p50 ${q(0.5)} ms   p99 ${q(0.99)} ms   max ${lat.at(-1)} ms`);
}

console.log(`Banyan data-path figures — ${machine()}`);
if (all || which.has("wire")) {
  wireFigures(500, 0.1, 600, 60);
  wireFigures(500, 0.023, 600, 60);
}
if (all || which.has("render")) {
  await renderFigures(200, 500);
  await renderFigures(2000, 500);
}
if (all || which.has("ingest")) {
  await ingestFigures(2000, 500, 0.023, Number(process.env.INGEST_TICKS ?? 120));
  await ingestFigures(2000, 500, 0.1, 120);
}
if (all || which.has("latency")) await latencyFigures(63, 1000, 20);
