import { fork } from "node:child_process";
import { request } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import { generateTopology } from "../src/tools/topology/index.js";
import { silentLogger } from "../src/core/logger.js";
import { parseRootConfig } from "../src/root/index.js";
import { SyntheticFeed } from "./synthetic-feed.js";
import { startRoot } from "../src/root/index.js";

/**
 * The watch API's cost: a root ingesting `nodes` synthetic nodes × `series` (10 % changing a second)
 * at 1 s, with `watchers` SSE watchers of 100 series each (one metric of a block of 100 nodes),
 * read by another process. Reports the latency from a sample's time to its arrival at a watcher
 * (p50, p99), the messages delivered, and the root's event-loop delay (p99) while it serves them.
 *
 *   node dist/bench/watch-figures.js [nodes=1000] [series=500] [watchers=100,200,400] [seconds=15]
 */
const [nodesArg, seriesArg, watchersArg, secondsArg] = process.argv.slice(2);

if (process.argv[2] === "clients") {
  // The watchers, in their own process: port, count; they report latencies when told to stop.
  const port = Number(process.argv[3]);
  const count = Number(process.argv[4]);
  const lat: number[] = [];
  let messages = 0;
  let dropped = 0;
  for (let k = 0; k < count; k++) {
    const q = `match[]=${encodeURIComponent(`node_context_switches_total{instance=~"n00${k % 10}[0-9][0-9]"}`)}`;
    request({ host: "127.0.0.1", port, path: `/api/v1/watch?${q}` }, (res) => {
      let first = true;
      res.setEncoding("utf8");
      res.on("data", (c: string) => {
        const now = Date.now();
        if (c.includes("event: dropped")) dropped++;
        if (first) {
          first = false;
          return;
        }
        messages++;
        for (const m of c.matchAll(/"value":\[([\d.]+),/g)) {
          lat.push(now - Number(m[1]) * 1000);
        }
      });
    })
      .on("error", () => dropped++)
      .end();
  }
  process.on("message", () => {
    lat.sort((a, b) => a - b);
    const p = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? NaN;
    process.send!({ p50: p(0.5), p99: p(0.99), samples: lat.length, messages, dropped }, () => process.exit(0));
  });
} else {
  const nodes = Number(nodesArg ?? 1000);
  const series = Number(seriesArg ?? 500);
  const watcherCounts = (watchersArg ?? "100,200,400").split(",").map(Number);
  const seconds = Number(secondsArg ?? 15);
  const names = Array.from({ length: nodes }, (_, k) => `n${String(k).padStart(5, "0")}`);
  const { topology } = generateTopology({ nodes: names, roots: ["r1"], trees: 1, local: 30960 });
  for (const watchers of watcherCounts) {
    const root = await startRoot({ topology, topologySource: "bench", name: "r1", log: silentLogger(), registry: new Registry() }, parseRootConfig({ intervalMs: 1000, watch: { maxWatchers: watchers + 10 }, web: { maxConnections: watchers + 50 } }));
    const feed = new SyntheticFeed(names, series);
    const tick = (now: number): void => feed.tick(root.store, now);
    tick(Date.now());
    const clients = fork(fileURLToPath(import.meta.url), ["clients", String(root.httpPort), String(watchers)]);
    clients.on("error", () => undefined);
    await new Promise((r) => setTimeout(r, 2000));
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    let ingestMs = 0;
    for (let s = 0; s < seconds; s++) {
      const t0 = Date.now();
      tick(t0);
      ingestMs += Date.now() - t0;
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
    }
    delay.disable();
    const result = await new Promise<{ p50: number; p99: number; samples: number; messages: number; dropped: number }>((resolve) => {
      clients.once("message", (m) => resolve(m as never));
      clients.send("stop");
    });
    console.log(
      `${watchers} watchers × 100 series, ${nodes} nodes × ${series} series at 1 s: sample → watcher p50 ${result.p50} ms, p99 ${result.p99} ms ` +
        `(${result.samples} samples in ${result.messages} messages, ${result.dropped} dropped); root ingest ${(ingestMs / seconds).toFixed(0)} ms a second, event-loop delay p99 ${(delay.percentile(99) / 1e6).toFixed(0)} ms`,
    );
    await root.stop();
  }
}
