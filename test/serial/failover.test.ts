import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { eventually, sleep, startCluster, watchCounters } from "../fixtures/cluster.js";

/** Descendants of a node in the topology. */
function descendants(topology: ReturnType<typeof generateTopology>["topology"], name: string): string[] {
  const out: string[] = [];
  const walk = (n: string): void => {
    for (const c of topology.nodes.get(n)!.children) {
      out.push(c);
      walk(c);
    }
  };
  walk(name);
  return out;
}

/** Nodes whose status series say they are attached away from their planned parent, at any live root. */
function awayNodes(cluster: Awaited<ReturnType<typeof startCluster>>): string[] {
  const away: string[] = [];
  for (const r of cluster.liveRoots()) {
    for (const n of r.store.originNames) {
      const st = r.store.origin(n)!;
      if (!st.up) continue;
      const s = st.nodeStatus();
      if (s.parent !== null && s.parent !== cluster.topology.nodes.get(n)!.parent) away.push(n);
    }
  }
  return away;
}

const FAST = { intervalMs: 250, ackTimeoutMs: 500, healAfterMs: 1500 };

t.test("failover - killing an interior relay: its subtree is back within seconds, no counter goes backwards, and the tree heals when it returns", async (t) => {
  const cluster = await startCluster({ nodes: "n[01-31]", roots: "r1", trees: 1, basePort: 26400, series: 40, intervalMs: FAST.intervalMs, agentConfig: FAST, rootConfig: { deadAfterMs: 1500 } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 31, 20_000), "31 up");
  const watch = watchCounters(cluster);
  const victim = "n02"; // first child of n01: an interior relay with a deep subtree
  const below = descendants(cluster.topology, victim);
  t.ok(below.length >= 6, `${victim} relays ${below.length} nodes`);

  const killedAt = Date.now();
  await cluster.kill(victim);
  watch.restarted.add(victim);
  const back = await eventually(() => below.every((n) => cluster.upNodes().has(n) && cluster.roots[0]!.store.origin(n)!.lastSeenMs > killedAt), 15_000, 20);
  t.ok(back, "every descendant of the killed relay is visible again");
  t.comment(`descendants visible again ${Date.now() - killedAt} ms after the kill`);
  t.ok(await eventually(() => !cluster.upNodes().has(victim), 10_000), "the killed relay itself is marked down");
  t.ok(awayNodes(cluster).length > 0, "its children report they are attached away from their planned parent");

  const restartedAt = Date.now();
  await cluster.restart(victim);
  t.ok(await eventually(() => cluster.upNodes().size === 31 && awayNodes(cluster).length === 0, 20_000), "after the relay returns, every node is back under its planned parent");
  t.comment(`healed ${Date.now() - restartedAt} ms after the restart (healAfterMs ${FAST.healAfterMs})`);
  await sleep(500);
  t.same(watch.stop(), [], "no counter went backwards at any root");
});

t.test("failover - killing a root: every node of its tree is visible again through the other root", async (t) => {
  const cluster = await startCluster({ nodes: "n[01-30]", roots: "r[1-2]", trees: 2, basePort: 26500, series: 40, intervalMs: FAST.intervalMs, agentConfig: FAST, rootConfig: { deadAfterMs: 1500 } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 30, 20_000), "30 up");
  const watch = watchCounters(cluster);
  const ofR1 = [...cluster.topology.nodes].filter(([, n]) => n.tree === 0).map(([name]) => name);
  const killedAt = Date.now();
  await cluster.killRoot(0);
  const r2 = cluster.roots[1]!;
  t.ok(await eventually(() => ofR1.every((n) => r2.store.origin(n)?.up === true), 15_000, 20), "every node of r1's tree is up at r2");
  t.comment(`r1's ${ofR1.length} nodes visible at r2 ${Date.now() - killedAt} ms after r1 died`);
  const page = await r2.render();
  t.match(page, new RegExp(`node_cpu_seconds_total\\{cpu="0",job="synthetic",mode="idle",instance="${ofR1[ofR1.length - 1]}"\\}`), "their series keep instance and job at the other root");
  t.same(watch.stop(), [], "no counter went backwards");
});

t.test("failover - several relays killed at once in a 255-node tree: every surviving node returns", async (t) => {
  const cluster = await startCluster({ nodes: "n[001-255]", roots: "r1", trees: 1, basePort: 27600, series: 10, intervalMs: 500, agentConfig: { ...FAST, intervalMs: 500, ackTimeoutMs: 1000 }, rootConfig: { deadAfterMs: 3000 } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 255, 60_000, 200), `255 up (${cluster.upNodes().size})`);
  // Interior relays spread over the tree, parent and child both among them.
  const interior = [...cluster.topology.nodes].filter(([, n]) => n.children.length > 0).map(([name]) => name);
  const victims = [interior[1]!, interior[2]!, interior[9]!, interior[40]!, interior[77]!];
  const killedAt = Date.now();
  await Promise.all(victims.map((v) => cluster.kill(v)));
  const survivors = [...cluster.topology.nodes.keys()].filter((n) => !victims.includes(n));
  t.ok(await eventually(() => survivors.every((n) => cluster.upNodes().has(n) && cluster.roots[0]!.store.origin(n)!.lastSeenMs > killedAt), 30_000, 50), "every surviving node is visible again");
  t.comment(`${survivors.length} survivors visible ${Date.now() - killedAt} ms after ${victims.length} relays were killed`);
});

t.test("failover - chaos: random kills and restarts; at the end every live node's values at the roots are the agents' within the bound", async (t) => {
  const cluster = await startCluster({ nodes: "n[01-40]", roots: "r[1-2]", trees: 4, basePort: 26700, series: 30, intervalMs: FAST.intervalMs, agentConfig: FAST, rootConfig: { deadAfterMs: 1500 } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 40, 20_000), "40 up");
  let seed = 20261121;
  const rand = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const names = [...cluster.topology.nodes.keys()];
  const down = new Set<string>();
  for (let round = 0; round < 12; round++) {
    const action = rand(10);
    if (action < 5 && down.size < 6) {
      const victim = names[rand(names.length)]!;
      if (!down.has(victim)) {
        await cluster.kill(victim);
        down.add(victim);
      }
    } else if (action < 8 && down.size > 0) {
      const back = [...down][rand(down.size)]!;
      await cluster.restart(back);
      down.delete(back);
    } else if (action === 9) {
      await cluster.restartRoot(rand(2));
    }
    await sleep(400 + rand(600));
  }
  for (const n of [...down]) await cluster.restart(n);
  t.ok(await eventually(() => cluster.upNodes().size === 40, 30_000, 100), `every node up again (${cluster.upNodes().size})`);
  await sleep(1000);
  // Every live node, at whichever root has it up: values are what its agent sampled at that tick.
  const problems: string[] = [];
  for (const r of cluster.liveRoots()) {
    for (const origin of r.store.originNames) {
      const st = r.store.origin(origin)!;
      if (!st.up) continue;
      const truth = cluster.sources.get(origin)!.truth.get(st.lastSampleMs);
      if (truth === undefined) {
        problems.push(`${origin} at ${r.name}: no sample at ${st.lastSampleMs}`);
        continue;
      }
      const d = st.decoded;
      for (let id = 0; id < d.capacity; id++) {
        const def = d.def(id);
        if (def === undefined || def.name.startsWith("banyan_node_")) continue;
        const want = truth.get(`${def.name}{${def.labels.filter(([k]) => k !== "job").map(([k, v]) => `${k}="${v}"`).join(",")}}`.replace("{}", ""));
        if (want === undefined) problems.push(`${origin} ${def.name}: not sampled`);
        else if (Math.abs(d.value(id) - want.value) > 0.01 * Math.abs(want.value)) problems.push(`${origin} ${def.name}: ${d.value(id)} vs ${want.value}`);
      }
    }
  }
  t.same(problems.slice(0, 10), [], "every live node's values within the bound of what it sampled");
});
