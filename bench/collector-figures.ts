import { Session } from "node:inspector/promises";
import { NodeSource } from "../src/agent/index.js";
import type { SampleTarget } from "../src/node/index.js";

/**
 * The procfs collectors alone, on this machine's /proc and /sys, ticked back to back in this
 * process: CPU and bytes allocated per tick, and the functions that allocate most (V8's sampling
 * heap profiler, counting what the collector took back too). What the agent costs on top (the
 * runtime, encoding, the stream) is `agent-figures.js`.
 *
 *   node dist/bench/collector-figures.js [ticks]
 */
const ticks = Number(process.argv[2] ?? 500);
const source = new NodeSource({ proc: "/proc", sys: "/sys", rootfs: "" });
let next = 0;
const target: SampleTarget = { define: () => next++, set: () => undefined, remove: () => undefined };
for (let i = 0; i < 30; i++) await source.collect(target);

const c0 = process.cpuUsage();
const t0 = performance.now();
for (let i = 0; i < ticks; i++) await source.collect(target);
const cpu = process.cpuUsage(c0);
const wall = performance.now() - t0;
console.log(`${ticks} ticks, ${next} series: ${((cpu.user + cpu.system) / 1000 / ticks).toFixed(2)} ms CPU a tick (user ${(cpu.user / 1000 / ticks).toFixed(2)}, system ${(cpu.system / 1000 / ticks).toFixed(2)}), ${(wall / ticks).toFixed(2)} ms wall`);

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}
const session = new Session();
session.connect();
await session.post("HeapProfiler.startSampling", { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
const sampled = Math.min(ticks, 100);
for (let i = 0; i < sampled; i++) await source.collect(target);
const { profile } = (await session.post("HeapProfiler.stopSampling")) as unknown as { profile: { head: ProfileNode } };
session.disconnect();
const by = new Map<string, number>();
let total = 0;
const walk = (node: ProfileNode, caller: string): void => {
  const cf = node.callFrame;
  // Built-ins (split, exec) are named after the function that called them.
  const name = `${cf.functionName || "(anonymous)"} ${cf.url.replace(/.*\/dist\//, "").replace(/.*node_modules\//, "")}:${cf.lineNumber + 1}${cf.url === "" ? ` <- ${caller}` : ""}`;
  total += node.selfSize;
  by.set(name, (by.get(name) ?? 0) + node.selfSize);
  for (const c of node.children) walk(c, cf.url === "" ? caller : name);
};
walk(profile.head, "");
console.log(`allocated ${(total / sampled / 1024).toFixed(0)} KB a tick; most by:`);
for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${(v / sampled / 1024).toFixed(1).padStart(6)} KB  ${k}`);
