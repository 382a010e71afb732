import { Registry } from "prom-client";
import t from "tap";
import { parseAgentConfig } from "../../src/agent/agent-config.js";
import { startAgent } from "../../src/agent/agent-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import type { NodeDaemon } from "../../src/wire/tree-node.js";
import { RecordingSource, eventually, sleep, startCluster } from "../fixtures/cluster.js";

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
