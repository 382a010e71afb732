import { Registry } from "prom-client";
import { generateTopology } from "../src/tools/topology/index.js";
import { choosePortBase } from "./bench-ports.js";
import { expandHostlist } from "../src/topology/hostlist.js";
import { parseAgentConfig } from "../src/agent/index.js";
import { startAgent } from "../src/agent/index.js";
import { startRoot, type RootDaemon } from "../src/root/index.js";
import type { NodeDaemon } from "../src/node/index.js";
import { silentLogger } from "../src/core/logger.js";
import { parseRootConfig } from "../src/root/index.js";

/**
 * Failover figures with the default settings (1 s interval, ack timeout 2 s, dead after 3 s):
 * after killing an interior relay, and after killing a root, how long until the first child
 * noticed (detection) and until every affected node's fresh samples reached a root again
 * (visible). Repeated runs, median and worst. In-process daemons over loopback gRPC; a "kill" ends
 * the daemon at once without draining, so its children see the stream end as after a crash.
 *
 *   node dist/bench/failover-figures.js [runs]
 */
const runs = Number(process.argv[2] ?? 5);
const log = silentLogger();

interface Cluster {
  roots: RootDaemon[];
  agents: Map<string, NodeDaemon>;
  topology: ReturnType<typeof generateTopology>["topology"];
}

/** A one-machine cluster on a block of ports outside the kernel's ephemeral range (each run its own block). */
async function start(run: number, nodes: string, roots: string, trees: number): Promise<Cluster> {
  const names = expandHostlist(nodes);
  const rootNames = expandHostlist(roots);
  const count = names.length + 2 * rootNames.length;
  const { topology } = generateTopology({ nodes: names, roots: rootNames, trees, local: choosePortBase(count, 20000 + (run % 50) * count) });
  const rs: RootDaemon[] = [];
  for (const r of topology.roots) rs.push(await startRoot({ topology, topologySource: "bench", name: r.name, log, registry: new Registry() }, parseRootConfig({})));
  const agents = new Map<string, NodeDaemon>();
  for (const n of topology.nodes.keys()) {
    agents.set(n, await startAgent({ topology, topologySource: "bench", name: n, log, registry: new Registry() }, parseAgentConfig({ source: "synthetic", synthetic: { series: 100 } })));
  }
  return { roots: rs, agents, topology };
}

async function stop(c: Cluster): Promise<void> {
  for (const a of [...c.agents.values()].reverse()) await a.stop(0);
  for (const r of c.roots) await r.stop().catch(() => undefined);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await check()) return Date.now();
    await sleep(5);
  }
  return NaN;
}

async function failingOver(a: NodeDaemon): Promise<boolean> {
  const m = await a.registry.getSingleMetric("banyan_uplink_transitions_total")!.get();
  return m.values.some((v) => v.labels["to"] === "failing-over" && v.value > 0);
}

function freshAt(roots: RootDaemon[], node: string, since: number): boolean {
  return roots.some((r) => {
    const st = r.store.origin(node);
    return st !== undefined && st.up && st.lastSampleMs > since;
  });
}

async function relayKill(run: number): Promise<[number, number]> {
  const c = await start(2 * run, "n[01-31]", "r1", 1);
  await until(() => [...c.agents.keys()].every((n) => freshAt(c.roots, n, 0)), 30_000);
  await sleep(1500);
  const victim = "n02";
  const children = c.topology.nodes.get(victim)!.children;
  const below: string[] = [];
  const walk = (n: string): void => c.topology.nodes.get(n)!.children.forEach((k) => (below.push(k), walk(k)));
  walk(victim);
  const killedAt = Date.now();
  await c.agents.get(victim)!.stop(0);
  c.agents.delete(victim);
  const detected = (await Promise.all(children.map((ch) => until(() => failingOver(c.agents.get(ch)!), 20_000)))).reduce((a, b) => Math.min(a, b));
  const visible = await until(() => below.every((n) => freshAt(c.roots, n, killedAt)), 30_000);
  await stop(c);
  return [detected - killedAt, visible - killedAt];
}

async function rootKill(run: number): Promise<[number, number]> {
  const c = await start(2 * run + 1, "n[01-32]", "r[1-2]", 2);
  await until(() => [...c.agents.keys()].every((n) => freshAt(c.roots, n, 0)), 30_000);
  await sleep(1500);
  const ofR1 = [...c.topology.nodes].filter(([, n]) => n.tree === 0).map(([name]) => name);
  const top = [...c.topology.nodes].filter(([, n]) => n.parent === "r1").map(([name]) => name);
  const killedAt = Date.now();
  const dead = c.roots.shift()!;
  await dead.stop();
  const detected = (await Promise.all(top.map((n) => until(() => failingOver(c.agents.get(n)!), 20_000)))).reduce((a, b) => Math.min(a, b));
  const visible = await until(() => ofR1.every((n) => freshAt(c.roots, n, killedAt)), 30_000);
  await stop(c);
  return [detected - killedAt, visible - killedAt];
}

function summary(label: string, xs: [number, number][]): void {
  const med = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  const det = xs.map((x) => x[0]);
  const vis = xs.map((x) => x[1]);
  console.log(`${label.padEnd(34)} detection median ${med(det)} ms, worst ${Math.max(...det)} ms; visible again median ${med(vis)} ms, worst ${Math.max(...vis)} ms   (${xs.map((x) => x[1]).join(", ")})`);
}

console.log(`Banyan failover figures — ${new Date().toISOString()} node ${process.version}, ${runs} runs each, default settings (interval 1 s)`);
const relay: [number, number][] = [];
for (let k = 0; k < runs; k++) relay.push(await relayKill(k));
summary("interior relay killed (31 nodes)", relay);
const root: [number, number][] = [];
for (let k = 0; k < runs; k++) root.push(await rootKill(k));
summary("root killed (32 nodes, 2 roots)", root);
