import { Registry } from "prom-client";
import t from "tap";
import { parseAgentConfig } from "../../src/agent/agent-config.js";
import { startAgent } from "../../src/agent/agent-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import type { NodeDaemon } from "../../src/node/node-daemon.js";
import { RecordingSource, eventually, sleep, startCluster } from "../fixtures/cluster.js";
import { heard, isOtherLiveProcess } from "../../src/wire/child-link.js";

const BASE = 19200;

/**
 * Two agents started with one name (a copied config, a node reinstalled while the old one runs):
 * the parent keeps one stream per node, so the newer replaces the older. The replaced one says so
 * and stays where its fallback chain took it, instead of moving back and replacing the other in
 * turn, every healAfterMs, for as long as both run.
 */
t.test("named twice - an agent replaced by its namesake holds still instead of replacing it back", async (t) => {
  const cluster = await startCluster({ nodes: "n[1-3]", roots: "r1", trees: 1, basePort: BASE, intervalMs: 500, agentConfig: { healAfterMs: 500 } });
  const twins: { daemon: NodeDaemon; registry: Registry }[] = [];
  t.teardown(async () => {
    for (const x of twins) await x.daemon.stop(0);
    await cluster.stop();
  });
  const chain = cluster.topology.nodes.get("n2")!.fallbacks;
  t.ok(chain.length >= 1, `n2 has a fallback (${chain.join(", ")})`);
  await cluster.kill("n2");
  for (let k = 0; k < 2; k++) {
    const registry = new Registry();
    const daemon = await startAgent({ topology: cluster.topology, topologySource: "test", name: "n2", log: silentLogger(), registry }, parseAgentConfig({ source: "synthetic", intervalMs: 500, keyframeIntervalMs: 5000, healAfterMs: 500 }), [
      new RecordingSource("n2", 30, 0.3),
    ]);
    twins.push({ daemon, registry });
  }
  const total = async (name: string): Promise<number> => {
    let sum = 0;
    for (const x of twins) sum += (await x.registry.getSingleMetric(name)!.get()).values.reduce((s, v) => s + v.value, 0);
    return sum;
  };
  t.ok(await eventually(async () => (await total("banyan_uplink_replaced_total")) >= 1, 15_000), "one of the two was replaced by the other and said so");
  // Ten times healAfterMs: without the hold, the replaced one moves back and replaces the other
  // each time its planned parent has answered for healAfterMs (a replacement each way).
  await sleep(1000);
  const replaced = await total("banyan_uplink_replaced_total");
  await sleep(5000);
  t.equal(await total("banyan_uplink_replaced_total"), replaced, "no further replacement while both run: the replaced one did not move back");
  t.ok(cluster.upNodes().has("n2"), "n2 is up at the root");
  // Both still send; the root keeps one's frames (the newer epoch; one seq each when both happen
  // to be in one epoch) and refuses and counts the other's.
  const refused = async (): Promise<number> =>
    (await cluster.roots[0]!.registry.getSingleMetric("banyan_root_frames_dropped_total")!.get()).values.filter((v) => v.labels["reason"] === "stale_epoch" || v.labels["reason"] === "duplicate").reduce((s, v) => s + v.value, 0);
  const before = await refused();
  t.ok(await eventually(async () => (await refused()) > before, 5000), "the other's frames are refused and counted at the root");
  t.ok(cluster.upNodes().has("n3") && cluster.upNodes().has("n1"), "its neighbours too");
});

t.test("named twice - with one parent, the parent keeps the stream that was there and refuses the namesake while it is alive", async (t) => {
  const cluster = await startCluster({ nodes: "n1", roots: "r1", trees: 1, basePort: BASE + 40, intervalMs: 300 });
  const twins: { daemon: NodeDaemon; registry: Registry }[] = [];
  t.teardown(async () => {
    for (const x of twins) await x.daemon.stop(0);
    await cluster.stop();
  });
  t.same(cluster.topology.nodes.get("n1")!.fallbacks, [], "n1 has no fallback: its root is its only parent");
  await cluster.kill("n1");
  const start = async (): Promise<void> => {
    const registry = new Registry();
    const daemon = await startAgent({ topology: cluster.topology, topologySource: "test", name: "n1", log: silentLogger(), registry }, parseAgentConfig({ source: "synthetic", intervalMs: 300 }), [new RecordingSource("n1", 20, 0.3)]);
    twins.push({ daemon, registry });
  };
  const counter = async (registry: Registry, name: string): Promise<number> => (await registry.getSingleMetric(name)?.get())?.values.reduce((s, v) => s + v.value, 0) ?? 0;
  const root = cluster.roots[0]!;
  await start();
  t.ok(await eventually(() => cluster.upNodes().has("n1"), 10_000), "the first n1 is up");
  const epoch = root.store.origin("n1")!.epoch;
  await start();
  t.ok(await eventually(async () => (await counter(root.registry, "banyan_tree_names_taken_total")) >= 1, 10_000), "the root refused the second n1 and counted it");
  t.ok(await eventually(async () => (await counter(twins[1]!.registry, "banyan_uplink_replaced_total")) >= 1, 5000), "the second one was told, and said so");
  const taken = await counter(root.registry, "banyan_tree_names_taken_total");
  await sleep(3000);
  t.equal(await counter(root.registry, "banyan_tree_names_taken_total"), taken, "it holds off: no second try within the hold");
  t.equal(await counter(twins[0]!.registry, "banyan_uplink_replaced_total"), 0, "the first was never replaced");
  t.equal(root.store.origin("n1")!.epoch, epoch, "the root still hears the first one's stream (same epoch)");
  t.ok(cluster.upNodes().has("n1"));
});

t.test("named twice - a parent tells another live process from the same one reconnecting or a silent stream", async (t) => {
  const link = { node: "n1", tree: 0, epoch: 1n, connectedAtMs: 0, instance: 7n, lastMessageMs: 0, gapMs: 0 };
  for (let now = 1000; now <= 10_000; now += 1000) heard(link, now);
  t.equal(Math.round(link.gapMs), 1000, "its usual gap: one interval");
  t.ok(isOtherLiveProcess(link, 8n, 11_000), "another instance while the stream speaks: refused");
  t.notOk(isOtherLiveProcess(link, 7n, 11_000), "the same instance (a reconnect of the process): it replaces its older stream");
  t.notOk(isOtherLiveProcess(link, 0n, 11_000), "an older Banyan that does not say its instance: as before, the newer stream wins");
  t.notOk(isOtherLiveProcess(link, 8n, 13_100), "another instance after three silent gaps (a rebooted host, a half-open connection): it takes the name");
});
