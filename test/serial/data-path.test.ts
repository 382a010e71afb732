import t from "tap";
import { parseExposition } from "../../src/series/text-parser.js";
import { eventually, sleep, startCluster, valueProblems } from "../fixtures/cluster.js";

t.test("data path - 31 agents, 2 roots: every node present, values within bound of what was sampled, counters monotonic", async (t) => {
  const cluster = await startCluster({
    nodes: "n[01-31]",
    roots: "r[1-2]",
    trees: 2,
    basePort: 26000,
    series: 60,
    changeRate: 0.3,
    intervalMs: 200,
    rootConfig: { aggregates: [{ record: "cluster:node_cpu_seconds:count", expr: "count", metric: "node_cpu_seconds_total" }] },
  });
  t.teardown(() => cluster.stop());

  const upEverywhere = (): Set<string> => {
    const up = new Set<string>();
    for (const r of cluster.roots) for (const n of r.store.originNames) if (r.store.origin(n)!.up) up.add(n);
    return up;
  };
  t.ok(await eventually(() => upEverywhere().size === 31, 20_000), `all 31 nodes up at the roots (${upEverywhere().size})`);

  const lastCounter = new Map<string, number>();
  let checkedValues = 0;
  let problems: string[] = [];
  for (let round = 0; round < 12; round++) {
    await sleep(230);
    const r = valueProblems(cluster, lastCounter);
    checkedValues += r.checked;
    problems = problems.concat(r.problems).slice(0, 20);
  }
  t.same(problems, [], "no value outside its bound, no counter backwards");
  t.ok(checkedValues > 31 * 60 * 10, `${checkedValues} values checked`);
  t.equal(upEverywhere().size, 31, "every node still present");

  // The page Prometheus scrapes: each node's series under its instance, once, and the aggregate.
  const pages = await Promise.all(cluster.roots.map((r) => fetch(`http://127.0.0.1:${r.httpPort}/metrics`).then((res) => res.text())));
  const all = pages.join("");
  for (const n of cluster.topology.nodes.keys()) t.match(all, `node_cpu_seconds_total{cpu="0",job="synthetic",mode="idle",instance="${n}"}`, `${n} on a root's page`);
  t.match(all, /^cluster:node_cpu_seconds:count \d+$/m, "aggregate maintained at the roots");
  const count = [...all.matchAll(/^cluster:node_cpu_seconds:count (\d+)$/gm)].reduce((s, m) => s + Number(m[1]), 0);
  let sampledLoad = 0;
  for (const src of cluster.sources.values()) {
    const latest = [...src.truth.values()].at(-1)!;
    for (const { def } of latest.values()) if (def.name === "node_cpu_seconds_total") sampledLoad++;
  }
  t.ok(sampledLoad >= 31);
  t.equal(count, sampledLoad, "every node_cpu_seconds_total series counted once across the roots");

  // Scrapes at once (two Prometheus servers, gzip or not): each gets a whole page of its own, never
  // one overwritten by the next (the root keeps one page buffer between scrapes).
  const root = cluster.roots[0]!;
  const scrapes = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((k) => fetch(`http://127.0.0.1:${root.httpPort}/metrics`, { headers: k % 2 === 0 ? {} : { "accept-encoding": "gzip" } }).then((res) => res.text())),
  );
  for (const [k, page] of scrapes.entries()) t.same(parseExposition(page).errors, [], `concurrent scrape ${k} parses`);
  const cpu = scrapes.map((p) => parseExposition(p).samples.filter((x) => x.name === "node_cpu_seconds_total").length);
  t.ok(cpu.every((n) => n === cpu[0] && n > 0), `every concurrent scrape has all ${cpu[0]} node_cpu_seconds_total series`);
});
