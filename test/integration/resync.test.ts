import t from "tap";
import { eventually, startCluster } from "../fixtures/cluster.js";

t.test("resync - a root restarted empty is whole again through keyframes routed down the trees, not after the keyframe interval", async (t) => {
  const cluster = await startCluster({ nodes: "n[01-31]", roots: "r1", trees: 2, basePort: 26200, series: 40, intervalMs: 200, keyframeIntervalMs: 600_000 });
  t.teardown(() => cluster.stop());
  const upCount = (): number => [...cluster.roots[0]!.store.originNames].filter((n) => cluster.roots[0]!.store.origin(n)!.up).length;
  t.ok(await eventually(() => upCount() === 31, 20_000), "31 nodes up");
  const keysBefore = await keyframes(cluster);

  const started = Date.now();
  const root = await cluster.restartRoot(0);
  t.equal(upCount(), 0, "the new root starts empty");
  t.ok(await eventually(() => upCount() === 31, 15_000), `all 31 nodes whole again (${upCount()})`);
  t.comment(`whole again after ${Date.now() - started} ms (keyframe interval: 600 s)`);
  const page = await root.render();
  t.match(page, /^banyan_root_resyncs_requested_total\{reason="(gap|new_epoch|needs_keyframe)"\} \d+$/m, "the root asked for keyframes");
  t.ok((await keyframes(cluster)) >= keysBefore + 31, "every origin, leaves included, sent a keyframe on request");
});

async function keyframes(cluster: Awaited<ReturnType<typeof startCluster>>): Promise<number> {
  let n = 0;
  for (const a of cluster.agents.values()) {
    const m = (await a.registry.getSingleMetric("banyan_agent_frames_total")!.get()).values.find((v) => v.labels["kind"] === "key");
    n += m?.value ?? 0;
  }
  return n;
}
