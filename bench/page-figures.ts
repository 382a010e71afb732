import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import CDP from "chrome-remote-interface";
import { Registry } from "prom-client";
import { generateTopology } from "../src/tools/topology/index.js";
import { silentLogger } from "../src/core/logger.js";
import { parseRootConfig } from "../src/root/index.js";
import { SyntheticFeed } from "./synthetic-feed.js";
import { startRoot } from "../src/root/index.js";

/**
 * The live page's cost: a root fed `nodes` synthetic nodes (8 trees, `series` each, 10 % changing a
 * second, at 1 s) and headless Chromium showing its page (heatmap of load). Reports the time until
 * every node is drawn with its value, the page's JS heap, its renders per second and their time,
 * and the bytes a second it receives (all its streams). `--shot file.png` saves a screenshot.
 *
 *   node dist/bench/page-figures.js [nodes=1000] [series=120] [seconds=15] [--shot docs/live-page.png]
 */
const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const shotAt = process.argv.indexOf("--shot");
const shot = shotAt >= 0 ? process.argv[shotAt + 1] : undefined;
const nodes = Number(args[0] ?? 1000);
const series = Number(args[1] ?? 120);
const seconds = Number(args[2] ?? 15);
const names = Array.from({ length: nodes }, (_, k) => `n${String(k).padStart(5, "0")}`);
const { topology } = generateTopology({ nodes: names, roots: ["r1"], trees: 8, local: 30980 });
const root = await startRoot({ topology, topologySource: "bench", name: "r1", log: silentLogger(), registry: new Registry() }, parseRootConfig({ intervalMs: 1000, events: { nodeLabels: [{ nodes: `n[00000-${String(Math.floor(nodes / 2) - 1).padStart(5, "0")}]`, labels: { partition: "gpu" } }] } }));
const feed = new SyntheticFeed(names, series);
const tick = (now: number): void => feed.tick(root.store, now);
let ticking = true;
const loop = async (): Promise<void> => {
  while (ticking) {
    const t0 = Date.now();
    tick(t0);
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - t0))));
  }
};
tick(Date.now());
void loop();

const chromium = process.env["CHROMIUM"] ?? "chromium";
const port = 30979;
const proc = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", `--user-data-dir=${mkdtempSync(join(tmpdir(), "banyan-page-fig-"))}`, `--remote-debugging-port=${port}`, "--window-size=1400,1600", "about:blank"], { stdio: "ignore" });
let client: CDP.Client | null = null;
for (let k = 0; k < 100 && client === null; k++) {
  try {
    client = await CDP({ port });
  } catch {
    await new Promise((r) => setTimeout(r, 200));
  }
}
const c = client!;
await c.Page.enable();
await c.Runtime.enable();
await c.Network.enable({});
await c.Performance.enable({});
let bytes = 0;
c.Network.on("dataReceived", (e) => (bytes += e.dataLength));
const t0 = Date.now();
await c.Page.navigate({ url: `http://127.0.0.1:${root.httpPort}/?metric=load&state=off` });
const page = async (): Promise<{ renders: number; renderMs: number; firstFullMs: number | null }> => (await c.Runtime.evaluate({ expression: "window.__banyanPage", returnByValue: true })).result.value;
let full: number | null = null;
while (full === null && Date.now() - t0 < 60_000) {
  await new Promise((r) => setTimeout(r, 200));
  full = (await page())?.firstFullMs ?? null;
}
const loadMs = Date.now() - t0;
await new Promise((r) => setTimeout(r, 2000));
const before = { bytes, ...(await page()), at: Date.now() };
await new Promise((r) => setTimeout(r, seconds * 1000));
const after = { bytes, ...(await page()), at: Date.now() };
const s = (after.at - before.at) / 1000;
const heap = (await c.Performance.getMetrics()).metrics.find((m) => m.name === "JSHeapUsedSize")?.value ?? NaN;
if (shot !== undefined) writeFileSync(shot, Buffer.from((await c.Page.captureScreenshot({ format: "png", captureBeyondViewport: true })).data, "base64"));
const renders = after.renders - before.renders;
console.log(
  `${nodes} nodes × ${series} series, 8 trees: every node drawn with its value ${loadMs} ms after the page was opened; JS heap ${(heap / 1e6).toFixed(1)} MB; ` +
    `${(renders / s).toFixed(1)} renders a second at ${(renders > 0 ? (after.renderMs - before.renderMs) / renders : 0).toFixed(1)} ms each; ` +
    `${Math.round((after.bytes - before.bytes) / s)} B/s received (${Math.round((after.bytes - before.bytes) / s / (nodes / 1000))} B/s per 1,000 nodes)`,
);
ticking = false;
await c.close();
proc.kill("SIGKILL");
await root.stop();
process.exit(0);
