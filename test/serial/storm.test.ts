import t from "tap";
import { eventually, sleep, startCluster, valueProblems } from "../fixtures/cluster.js";

async function counterAt(registry: import("prom-client").Registry, name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (m === undefined) return 0;
  return (await m.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

t.test("storm - 200 nodes started in one tick, then a root restarted: no node ever marked down, every value within bound after", async (t) => {
  const cluster = await startCluster({
    nodes: "n[001-200]",
    roots: "r[1-2]",
    trees: 8,
    basePort: 26400,
    series: 30,
    changeRate: 0.2,
    intervalMs: 500,
    keyframeIntervalMs: 4000,
    // Spread the first keyframes over 2 s, as a cluster of 2,000 nodes would by default.
    agentConfig: { startSpreadMs: 2000 },
    // A small resync budget: the restarted root must absorb 100 keyframes under it, not at once.
    rootConfig: { resyncPerS: 60, resyncBurst: 20, keyframeIntervalMs: 4000 },
  });
  t.teardown(() => cluster.stop());
  // Once up, a node must stay visible at some live root (outside the restart itself, where its
  // nodes are away until they reach the other root or the restarted one).
  let seen = new Set<string>();
  let watching = true;
  const missing: string[] = [];
  const watch = setInterval(() => {
    if (!watching) return;
    const now = cluster.upNodes();
    for (const n of seen) if (!now.has(n) && missing.length < 20) missing.push(n);
    seen = now;
  }, 50);
  t.teardown(() => clearInterval(watch));

  t.ok(await eventually(() => cluster.upNodes().size === 200, 30_000), `all 200 nodes up (${cluster.upNodes().size})`);
  let keys = 0;
  for (const r of cluster.roots) keys += await counterAt(r.registry, "banyan_root_frames_applied_total", { kind: "key" });
  t.ok(keys >= 200 && keys < 240, `about one full keyframe per node so far (${keys})`);

  const home = cluster.roots[0]!;
  const mine = [...home.store.originNames].filter((n) => home.store.origin(n)!.up);
  watching = false;
  const restarted = await cluster.restartRoot(0);
  t.ok(await eventually(() => mine.every((n) => restarted.store.origin(n)?.up === true), 30_000), `the restarted root's ${mine.length} nodes are whole again`);
  seen = cluster.upNodes();
  watching = true;
  const requested = await counterAt(restarted.registry, "banyan_root_resyncs_requested_total");
  t.ok(requested >= mine.length * 0.5, `the restarted root asked for keyframes (${requested}) under its budget`);

  // Nodes that failed over to r2 move back to r1 once it answered for healAfterMs (5 s here): the
  // move must not leave them missing anywhere in between.
  await sleep(7000);
  const { problems, checked } = valueProblems(cluster, new Map());
  t.same(problems.slice(0, 10), [], "every value within its bound");
  t.ok(checked > 200 * 25, `${checked} values checked`);
  t.same(missing, [], "no node went missing from every root");
  let downs = 0;
  for (const r of cluster.liveRoots()) downs += await counterAt(r.registry, "banyan_root_nodes_down_total");
  t.equal(downs, 0, "banyan_root_nodes_down_total stays 0");
});
