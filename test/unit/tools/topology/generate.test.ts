import fc from "fast-check";
import t from "tap";
import { checkTopology } from "../../../../src/tools/topology/check.js";
import { generateTopology } from "../../../../src/tools/topology/generate.js";
import { expandHostlist } from "../../../../src/topology/hostlist.js";
import { fittedScrapeInterval, renderTopology } from "../../../../src/tools/topology/renderers.js";
import { parseSwitchLayout } from "../../../../src/tools/topology/switch-layout.js";
import type { Topology } from "../../../../src/topology/topology-file.js";
import { diffTopologies, topologyStats } from "../../../../src/tools/topology/topology-stats.js";
import { completeTreeDepth } from "../../../../src/tools/topology/tree-slots.js";

const names = (n: number, prefix = "node"): string[] => Array.from({ length: n }, (_, k) => `${prefix}${String(k + 1).padStart(5, "0")}`);
const roots = (r: number): string[] => Array.from({ length: r }, (_, k) => `svc${k + 1}`);

/** The ancestors of a node, parent first, up to and including its root. */
function ancestors(topo: Topology, name: string): string[] {
  const out: string[] = [];
  for (let cur = topo.nodes.get(name)?.parent; cur !== undefined; cur = topo.nodes.get(cur)?.parent) out.push(cur);
  return out;
}

const cluster = fc.record({
  n: fc.integer({ min: 1, max: 1500 }),
  trees: fc.integer({ min: 1, max: 12 }),
  fanout: fc.integer({ min: 1, max: 4 }),
  r: fc.integer({ min: 1, max: 5 }),
});

t.test("generate - any cluster gives balanced, complete, sound trees", async (t) => {
  fc.assert(
    fc.property(cluster, ({ n, trees, fanout, r }) => {
      const { topology } = generateTopology({ nodes: names(n), roots: roots(r), trees, fanout });
      const problems = checkTopology(topology);
      if (problems.length > 0) throw new Error(problems.slice(0, 5).join("\n"));
      const stats = topologyStats(topology);
      const sizes = stats.trees.map((s) => s.nodes);
      if (Math.max(...sizes) - Math.min(...sizes) > 1) throw new Error(`unbalanced ${sizes}`);
      for (const s of stats.trees) {
        if (s.depth !== completeTreeDepth(s.nodes, fanout)) throw new Error(`tree ${s.tree} depth ${s.depth}`);
        if (s.maxFanIn > fanout) throw new Error(`tree ${s.tree} fan-in ${s.maxFanIn}`);
      }
      return topology.nodes.size === n;
    }),
    { numRuns: 60, seed: 20261121 },
  );
});

t.test("generate - depth is about log2(N / trees)", async (t) => {
  const at = (n: number): number =>
    topologyStats(generateTopology({ nodes: names(n), roots: roots(2) }).topology).totals.maxDepth;
  t.equal(at(4096), 9, "4,096 nodes in 8 binary trees: depth 9");
  t.equal(at(8), 1);
  t.equal(at(24), 2);
  const d = at(100_000);
  t.ok(d >= 13 && d <= 14, `100,000 nodes: depth ${d}`);
});

t.test("generate - fallback chains: ancestors above the parent, own root, then the other roots", async (t) => {
  fc.assert(
    fc.property(cluster, ({ n, trees, fanout, r }) => {
      const { topology } = generateTopology({ nodes: names(n), roots: roots(r), trees, fanout });
      const rootOf = new Map<number, string>();
      for (const root of topology.roots) for (const tree of root.trees) rootOf.set(tree, root.name);
      for (const [name, node] of topology.nodes) {
        const up = ancestors(topology, name); // parent … own root
        const ownRoot = rootOf.get(node.tree)!;
        const expectHead = up.slice(1);
        const head = node.fallbacks.slice(0, expectHead.length);
        if (JSON.stringify(head) !== JSON.stringify(expectHead)) throw new Error(`${name}: ${node.fallbacks} vs ancestors ${up}`);
        const tail = node.fallbacks.slice(expectHead.length);
        if (new Set(tail).size !== tail.length) throw new Error(`${name}: repeated root in ${tail}`);
        const others = roots(r).filter((x) => x !== ownRoot).sort();
        if (JSON.stringify([...tail].sort()) !== JSON.stringify(others)) throw new Error(`${name}: other roots ${tail}`);
        if (node.fallbacks.includes(name) || node.fallbacks.includes(node.parent)) throw new Error(`${name}: self or parent in chain`);
        // Never a descendant: no fallback has this node among its ancestors.
        for (const f of node.fallbacks) if (ancestors(topology, f).includes(name)) throw new Error(`${name}: descendant ${f}`);
      }
      return true;
    }),
    { numRuns: 40, seed: 7 },
  );
});

t.test("generate - other roots follow a fixed rotation after the tree's own", async (t) => {
  const { topology } = generateTopology({ nodes: names(64), roots: roots(3), trees: 8 });
  t.same(topology.roots.map((r) => r.trees), [[0, 3, 6], [1, 4, 7], [2, 5]], "roots take trees round-robin");
  const top = (tree: number): string => [...topology.nodes].find(([, n]) => n.tree === tree && n.slot === 0)![0];
  t.same(topology.nodes.get(top(0))!.fallbacks, ["svc2", "svc3"], "tree 0 (svc1) falls back to the root of tree 1, then 2");
  t.same(topology.nodes.get(top(1))!.fallbacks, ["svc3", "svc1"], "tree 1 (svc2) to tree 2's root, then tree 3's");
  t.same(topology.nodes.get(top(2))!.fallbacks, ["svc1", "svc2"]);
});

t.test("generate - with a switch layout, parent and child share a leaf switch wherever possible", async (t) => {
  // 16 leaf switches of 32 nodes under 4 spines; the node list comes shuffled.
  const conf = [
    ...Array.from({ length: 16 }, (_, s) => `SwitchName=leaf${s} Nodes=node[${String(s * 32 + 1).padStart(5, "0")}-${String(s * 32 + 32).padStart(5, "0")}] LinkSpeed=100`),
    ...Array.from({ length: 4 }, (_, k) => `SwitchName=spine${k} Switches=leaf[${k * 4}-${k * 4 + 3}]`),
    "SwitchName=core Switches=spine[0-3]",
  ].join("\n");
  const layout = parseSwitchLayout(conf, "topology.conf");
  const shuffled = fc.sample(fc.shuffledSubarray(names(512), { minLength: 512 }), { numRuns: 1, seed: 3 })[0]!;
  const racked = generateTopology({ nodes: shuffled, roots: roots(2), switches: { path: "topology.conf", layout } }).topology;
  t.same(checkTopology(racked), []);
  const stats = topologyStats(racked);
  // 64 nodes per tree = two whole switches: subtrees stay inside a switch, so only the edges where
  // a pre-order run crosses from one switch to the next cross (at most the depth of the tree).
  for (const s of stats.trees) t.ok(s.crossSwitchEdges! <= s.depth, `tree ${s.tree}: ${s.crossSwitchEdges} cross edges`);
  // Without the layout the same shuffled list crosses switches on almost every edge.
  const blind = generateTopology({ nodes: shuffled, roots: roots(2) }).topology;
  const blindCross = [...blind.nodes].filter(([name, n]) => {
    const p = blind.nodes.get(n.parent);
    return p !== undefined && layout.switchOf.get(name) !== layout.switchOf.get(n.parent);
  }).length;
  t.ok(stats.totals.crossSwitchEdges! * 20 < blindCross, `${stats.totals.crossSwitchEdges} vs ${blindCross} without the layout`);
  t.equal(racked.nodes.get("node00001")!.switch, "leaf0", "the node record names its switch");
});

t.test("generate - removing or adding k nodes moves at most about 3k others", async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 16, max: 1200 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer({ min: 0, max: 40 }),
      fc.integer(),
      (n, trees, removeK, addK, seed) => {
        const all = names(n);
        const before = generateTopology({ nodes: all, roots: roots(2), trees }).topology;
        const removed = new Set(fc.sample(fc.shuffledSubarray(all, { minLength: Math.min(removeK, n - 1), maxLength: Math.min(removeK, n - 1) }), { numRuns: 1, seed })[0]!);
        const after = [...all.filter((x) => !removed.has(x)), ...names(addK, "new")];
        const next = generateTopology({ nodes: after, roots: roots(2), trees, previous: before }).topology;
        const problems = checkTopology(next);
        if (problems.length > 0) throw new Error(problems.slice(0, 3).join("\n"));
        const d = diffTopologies(before, next);
        const k = removed.size + addK;
        if (d.removed.length !== removed.size || d.added.length !== addK) throw new Error("diff counts");
        if (d.moved.length > 3 * k) throw new Error(`n=${n} trees=${trees} -${removed.size} +${addK}: ${d.moved.length} moved`);
        return true;
      },
    ),
    { numRuns: 80, seed: 11 },
  );
});

t.test("generate - adding nodes to a cluster moves none of the others", async (t) => {
  const before = generateTopology({ nodes: names(1000), roots: roots(2) }).topology;
  const next = generateTopology({ nodes: [...names(1000), ...names(37, "gpu")], roots: roots(2), previous: before }).topology;
  t.same(diffTopologies(before, next).moved, []);
  t.same(checkTopology(next), []);
});

t.test("generate - a previous topology of other shape is ignored with a warning", async (t) => {
  const before = generateTopology({ nodes: names(100), roots: roots(2), trees: 4 }).topology;
  const { warnings, topology } = generateTopology({ nodes: names(100), roots: roots(2), trees: 8, previous: before });
  t.match(warnings.join("\n"), /every node is placed afresh/);
  t.same(checkTopology(topology), []);
});

t.test("generate - --local puts every host on 127.0.0.1 with distinct ports", async (t) => {
  const { topology } = generateTopology({ nodes: names(64), roots: roots(2), local: 17000 });
  t.same(topology.roots.map((r) => [r.address, r.http]), [["127.0.0.1:17000", "127.0.0.1:17001"], ["127.0.0.1:17002", "127.0.0.1:17003"]]);
  t.equal(topology.nodes.get("node00001")!.address, "127.0.0.1:17004");
  t.equal(topology.nodes.get("node00064")!.address, "127.0.0.1:17067");
  t.equal(topology.params.local, 17000);
  const defaults = generateTopology({ nodes: names(4), roots: roots(1) }).topology;
  t.equal(defaults.nodes.get("node00001")!.address, "node00001:7470");
  t.same([defaults.roots[0]!.address, defaults.roots[0]!.http], ["svc1:7470", "svc1:7471"]);
  for (const port of [9090, 9091, 9093, 9100, 9400, 8080]) t.not(port, 7470, "default ports avoid the peers'");
});

t.test("generate - refuses what cannot make a sound topology, naming the flag", async (t) => {
  t.throws(() => generateTopology({ nodes: names(4), roots: ["node00001"] }), /--roots: node00001 is also a compute node/);
  t.throws(() => generateTopology({ nodes: [], roots: roots(1) }), /--nodes: no nodes/);
  t.throws(() => generateTopology({ nodes: names(4), roots: [] }), /--roots: no roots/);
  t.throws(() => generateTopology({ nodes: ["a", "a"], roots: roots(1) }), /--nodes: a is listed twice/);
  t.throws(() => generateTopology({ nodes: names(4), roots: roots(1), trees: 0 }), /--trees: got 0/);
  t.throws(() => generateTopology({ nodes: names(4), roots: roots(1), port: 7000, httpPort: 7000 }), /same as --port/);
  t.throws(() => generateTopology({ nodes: names(100), roots: roots(1), local: 65500 }), /--local: ports 65500\.\.65601/);
  const few = generateTopology({ nodes: names(3), roots: roots(10), trees: 8 });
  t.match(few.warnings.join("\n"), /some trees are empty/);
  t.match(few.warnings.join("\n"), /some roots terminate no tree/);
  t.same(checkTopology(few.topology), []);
});

t.test("generate - hostlist names flow through unchanged", async (t) => {
  const { topology } = generateTopology({ nodes: expandHostlist("r[1-2]n[01-32]"), roots: expandHostlist("svc[1-2]") });
  t.same([...topology.nodes.keys()].slice(0, 2), ["r1n01", "r1n02"], "the file keeps the node list's order");
  t.equal(topology.nodes.size, 64);
});

t.test("generate - with --previous and switches, a refilled slot takes a node from its parent's switch", async (t) => {
  // The first layout of the cluster knew no switches: tree 0 holds node00001-16, tree 7 node00113-128.
  const before = generateTopology({ nodes: names(128), roots: roots(2) }).topology;
  // Now the racks are known, the switch of tree 7's nodes first in the file; two interior nodes
  // leave each of trees 0 and 7, and two new nodes arrive on each of their switches.
  const conf = "SwitchName=b Nodes=node[00113-00128],x[1-2]\nSwitchName=a Nodes=node[00001-00016],y[1-2]\n";
  const layout = parseSwitchLayout(conf, "topology.conf");
  const interior = (tree: number): string[] =>
    [...before.nodes].filter(([, n]) => n.tree === tree && n.children.length === 2 && n.slot >= 2).slice(0, 2).map(([name]) => name);
  const gone = [...interior(0), ...interior(7)];
  const after = [...names(128).filter((n) => !gone.includes(n)), "x1", "x2", "y1", "y2"];
  const next = generateTopology({ nodes: after, roots: roots(2), switches: { path: "topology.conf", layout }, previous: before }).topology;
  t.same(checkTopology(next), []);
  t.ok(diffTopologies(before, next).moved.length <= 3 * 8);
  for (const name of gone) {
    const old = before.nodes.get(name)!;
    const filler = [...next.nodes].find(([, n]) => n.tree === old.tree && n.slot === old.slot)![0];
    const parent = next.nodes.get(filler)!.parent;
    t.equal(layout.switchOf.get(filler), layout.switchOf.get(parent), `${name}'s slot refilled by ${filler}, on its parent's switch`);
  }
});

t.test("generate - dedicated relays take the top slots of their trees, dealt round-robin; the topology stays sound", async (t) => {
  fc.assert(
    fc.property(cluster, fc.integer({ min: 0, max: 30 }), ({ n, trees, fanout, r }, k) => {
      const relays = names(k, "relay");
      const { topology } = generateTopology({ nodes: names(n), roots: roots(r), relays, trees, fanout });
      const problems = checkTopology(topology);
      if (problems.length > 0) throw new Error(problems.slice(0, 5).join("\n"));
      if (topology.nodes.size !== n + k) return false;
      for (let tree = 0; tree < trees; tree++) {
        const mine = relays.filter((_, j) => j % trees === tree);
        const records = [...topology.nodes].filter(([, rec]) => rec.tree === tree);
        // The relays are the first slots, marked as relays; no compute node sits above one.
        const top = records.filter(([, rec]) => rec.slot < mine.length).map(([name]) => name).sort();
        if (JSON.stringify(top) !== JSON.stringify([...mine].sort())) throw new Error(`tree ${tree}: top ${top} vs ${mine}`);
        for (const [name, rec] of records) if ((rec.relay === true) !== mine.includes(name)) throw new Error(`${name} relay flag`);
        for (const name of mine) if (ancestors(topology, name).some((a) => topology.nodes.has(a) && topology.nodes.get(a)!.relay !== true)) throw new Error(`${name} under a compute node`);
      }
      return true;
    }),
    { numRuns: 60, seed: 20261130 },
  );
});

t.test("generate - with relays, --previous keeps compute nodes where they were", async (t) => {
  const relays = ["relay1", "relay2", "relay3", "relay4"];
  const before = generateTopology({ nodes: names(500), roots: roots(2), relays }).topology;
  const next = generateTopology({ nodes: [...names(500), ...names(9, "gpu")], roots: roots(2), relays, previous: before }).topology;
  t.same(diffTopologies(before, next).moved, []);
  t.throws(() => generateTopology({ nodes: names(5), roots: roots(1), relays: ["node00001"] }), /--relays: node00001 is also a compute node/);
  t.throws(() => generateTopology({ nodes: names(5), roots: roots(1), relays: ["svc1"] }), /--relays: svc1 is also a root/);
});

t.test("render - the Prometheus scrape interval fits the largest root: twice its scrape time, from 1 s up", async (t) => {
  const small = generateTopology({ nodes: names(64), roots: roots(2) }).topology;
  t.equal(fittedScrapeInterval(small, 500).seconds, 1, "a demo-size cluster: 1 s");
  t.match(renderTopology(small, "prometheus"), /scrape_interval: 1s\n    scrape_timeout: 1s/);
  const big = generateTopology({ nodes: names(4096), roots: roots(2) }).topology;
  const fit = fittedScrapeInterval(big, 500);
  t.equal(fit.nodes, 2048);
  t.equal(fit.series, 1_024_000);
  t.equal(fit.seconds, 10, "1M series: 2.56 s a scrape, so 10 s (the next step past 5.1 s)");
  t.match(renderTopology(big, "prometheus"), /scrape_interval: 10s/);
  t.match(renderTopology(big, "prometheus", { scrapeInterval: "1s" }), /scrape_interval: 1s/, "an explicit interval wins");
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 5000 }), (n, r, spn) => {
      const f = fittedScrapeInterval(generateTopology({ nodes: names(n), roots: roots(r) }).topology, spn);
      // Long enough, and the shortest step that is.
      const steps = [1, 2, 5, 10, 15, 30, 60];
      const shorter = steps[steps.indexOf(f.seconds) - 1];
      return f.seconds >= Math.min(60, 2 * f.scrapeSeconds) && (shorter === undefined || shorter < 2 * f.scrapeSeconds);
    }),
    { numRuns: 40 },
  );
});
