import t from "tap";
import { eventually, sleep, startCluster, valueProblems } from "../fixtures/cluster.js";

async function total(registry: import("prom-client").Registry, name: string): Promise<number> {
  const m = registry.getSingleMetric(name);
  return m === undefined ? 0 : (await m.get()).values.reduce((n, v) => n + v.value, 0);
}

t.test("backlog - a relay holding several messages' worth of frames when its root comes back delivers everything", async (t) => {
  // A 64 KiB message limit everywhere: 60 nodes' frames of a few seconds, and then their keyframes,
  // are several messages' worth at the top relay (at scale: 16 MiB of keyframes after a root restart).
  // Before, the relay packed them into one batch that grpc-js refused before it left, retried it
  // forever, and kept acking its children: the whole subtree was silently gone.
  const limits = { maxMessageBytes: 65_536 };
  const cluster = await startCluster({
    nodes: "n[01-60]",
    roots: "r1",
    trees: 1,
    basePort: 22000,
    series: 40,
    changeRate: 1,
    intervalMs: 200,
    keyframeIntervalMs: 3000,
    agentConfig: { limits, ackTimeoutMs: 1000 },
    rootConfig: { limits, deadAfterMs: 20_000 },
  });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 60, 30_000), `all 60 nodes up (${cluster.upNodes().size})`);

  await cluster.killRoot(0);
  const top = [...cluster.agents.values()].find((a) => a.relay.uplink.plannedTarget.name === "r1")!;
  await sleep(4000);
  const queued = await total(top.registry, "banyan_uplink_queued_bytes");
  t.ok(queued > limits.maxMessageBytes, `the top relay holds more than a message's worth (${queued} B, ${top.relay.uplink.queuedFrames} frames queued)`);

  const root = await cluster.restartRoot(0);
  t.ok(await eventually(() => cluster.upNodes().size === 60, 30_000), `every node whole again at the restarted root (${cluster.upNodes().size})`);
  await sleep(1000);
  const { problems, checked } = valueProblems(cluster, new Map());
  t.same(problems.slice(0, 10), [], "every value within its bound");
  t.ok(checked >= 60 * 40, `${checked} values checked`);
  t.ok((await total(root.registry, "banyan_root_frames_applied_total")) > 60, "frames applied at the restarted root");
});
