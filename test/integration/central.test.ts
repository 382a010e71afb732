import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import t from "tap";
import { generateCentralTopology } from "../../src/tools/topology/central.js";
import { formatTopology } from "../../src/topology/topology-file.js";
import { silentLogger } from "../../src/core/logger.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { startRoot, type RootDaemon } from "../../src/root/root-daemon.js";
import { eventually, startCluster, type TestCluster } from "../fixtures/cluster.js";
import { makeCertificates } from "../../src/tools/certs/certificates.js";

type Status = { trees: { tree: number; nodes: number; guest_nodes: string[]; down_nodes: string[] }[]; clusters?: { cluster: string; up: boolean; roots: { root: string; connected: boolean }[]; nodes_up: number; nodes_expected: number; forwarded_nodes_up: number; series: number }[] };
type Ev = { type: string; node?: string; labels: Record<string, string> };

/** Two central roots for clusters siteA (roots ra1, ra2) and siteB (rb1, rb2); returns the topology file and a starter. */
function centralSetup(t: Tap.Test, base: number, clustersConfig: Record<string, unknown> = {}) {
  const topology = generateCentralTopology({ clusters: [{ name: "siteA", roots: ["ra1", "ra2"] }, { name: "siteB", roots: ["rb1", "rb2"] }], roots: ["central1", "central2"], local: base });
  const dir = mkdtempSync(join(tmpdir(), "banyan-central-"));
  const file = join(dir, "central.json");
  writeFileSync(file, formatTopology(topology));
  const centrals: RootDaemon[] = [];
  const start = async (name: string): Promise<RootDaemon> => {
    const r = await startRoot({ topology, topologySource: file, name, log: silentLogger(), registry: new Registry() }, parseRootConfig({ intervalMs: 200, deadAfterMs: 1500, clusters: clustersConfig }));
    centrals.push(r);
    return r;
  };
  return { file, start, centrals, topology };
}

async function status(r: RootDaemon): Promise<Status> {
  return (await (await fetch(`http://127.0.0.1:${r.httpPort}/api/v1/status`)).json()) as Status;
}

const seriesOf = (page: string, re: RegExp): string[] => page.split("\n").filter((l) => re.test(l));

t.test("central - each cluster forwards what its filter allows, labelled with its cluster; status, events and failover across clusters", async (t) => {
  const central = centralSetup(t, 18100);
  const c1 = await central.start("central1");
  const c2 = await central.start("central2");
  t.teardown(async () => {
    for (const r of central.centrals) await r.stop().catch(() => undefined);
  });
  const FAST = { ackTimeoutMs: 600, healAfterMs: 2000 };
  const siteA = await startCluster({
    nodes: "n[01-12]",
    roots: "ra[1-2]",
    trees: 2,
    basePort: 18000,
    series: 30,
    rootConfig: {
      deadAfterMs: 1500,
      central: { topology: central.file, ...FAST, forward: { allow: ["node_cpu_seconds_total", "node_context_switches_total"], deny: ['node_cpu_seconds_total{mode="idle"}'] } },
    },
  });
  t.teardown(() => siteA.stop());
  const siteB = await startCluster({
    nodes: "n[01-12]",
    roots: "rb[1-2]",
    trees: 2,
    basePort: 18050,
    series: 30,
    rootConfig: {
      deadAfterMs: 1500,
      aggregates: [{ record: "site:node_context_switches:sum", expr: "sum", metric: "node_context_switches_total" }],
      central: { topology: central.file, ...FAST, forward: { series: "aggregates" } },
    },
  });
  t.teardown(() => siteB.stop());
  const allUp = async (c: TestCluster) => c.upNodes().size === 12;
  t.ok(await eventually(async () => (await allUp(siteA)) && (await allUp(siteB)), 20_000), "both clusters up");

  t.ok(await eventually(async () => seriesOf(await c1.render(), /^node_context_switches_total\{.*cluster="siteA"/).length === 12, 15_000), "siteA's allowed series reach the central root, one per node");
  let page = await c1.render();
  t.ok(seriesOf(page, /^node_cpu_seconds_total\{cpu="0",job="synthetic",mode="user",cluster="siteA",instance="n07"\} /).length === 1, "with cluster and instance, the node's own labels kept");
  t.same(seriesOf(page, /^node_cpu_seconds_total\{.*mode="idle"/), [], "a denied series never appears");
  t.same(seriesOf(page, /^node_(disk|arp|boot)/), [], "a series the filter does not allow never leaves its cluster");
  t.same(seriesOf(page, /^node_[a-z_]+\{.*cluster="siteB"/), [], "siteB sends aggregates only: none of its nodes' series");
  t.ok(await eventually(async () => seriesOf(await c1.render(), /^site:node_context_switches:sum\{cluster="siteB",instance="rb[12]"\} /).length === 2, 10_000), "siteB's aggregates, one per root of the cluster");

  // Exact forwarding: the central copy equals what the cluster's root holds (within the node's bound by construction).
  t.ok(
    await eventually(async () => {
      const [a, c] = [await siteA.roots[0]!.render(), await c1.render()];
      const at = (p: string, re: RegExp) => seriesOf(p, re).map((l) => l.split(" ").pop());
      return JSON.stringify(at(a, /^node_context_switches_total\{job="synthetic",instance="n01"\} /)) === JSON.stringify(at(c, /^node_context_switches_total\{job="synthetic",cluster="siteA",instance="n01"\} /)) || siteA.roots[0]!.store.origin("n01") === undefined;
    }, 10_000),
    "the central value is the cluster root's value",
  );

  t.ok(await eventually(async () => (await status(c1)).clusters?.every((c) => c.nodes_up === 12) === true, 10_000), "each cluster's roots report all their nodes up");
  const s = await status(c1);
  t.match(s.clusters, [
    { cluster: "siteA", up: true, nodes_up: 12, nodes_expected: 12, forwarded_nodes_up: 12 },
    { cluster: "siteB", up: true, nodes_up: 12, nodes_expected: 12, forwarded_nodes_up: 0 },
  ]);
  t.same(s.clusters![0]!.roots.map((r) => r.connected), [true, true], "both of siteA's roots have their link");
  t.same(s.trees.flatMap((x) => [...x.guest_nodes, ...x.down_nodes]), [], "the clusters' roots and nodes are not a tree's nodes");
  t.match(page, /^banyan_node_up\{cluster="siteA",instance="n03",root="central1"\} 1$/m, "node up per cluster");

  // The watch API at the central root: across clusters, by cluster.
  const q = (await (await fetch(`http://127.0.0.1:${c1.httpPort}/api/v1/query?query=${encodeURIComponent("count by (cluster) (node_context_switches_total)")}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  t.same(q.data.result.map((e) => [e.metric, e.value[1]]), [[{ cluster: "siteA" }, "12"]], "a query at the central root, by cluster");

  // Events: a node of siteA goes down; the central root has it, filtered per cluster.
  const leaf = [...siteA.topology.nodes].find(([, n]) => n.children.length === 0)![0];
  await siteA.kill(leaf);
  const events = async (q: string) => ((await (await fetch(`http://127.0.0.1:${c1.httpPort}/api/v1/events${q}`)).json()) as { events: Ev[] }).events;
  t.ok(await eventually(async () => (await events(`?type=node_down&cluster=siteA`)).some((e) => e.node === leaf), 10_000), "siteA's node_down at the central root");
  t.match((await events("?type=node_down&cluster=siteA")).find((e) => e.node === leaf), { labels: { cluster: "siteA", instance: leaf } });
  t.same((await events("?type=node_down&cluster=siteB")).length, 0, "none for siteB");
  t.ok(await eventually(async () => seriesOf(await c1.render(), new RegExp(`^node_context_switches_total\\{job="synthetic",cluster="siteA",instance="${leaf}"\\}`)).length === 0, 10_000), "the down node's series leave the central page");

  // The primary central root dies: every cluster root fails over to central2.
  const killedAt = Date.now();
  await c1.stop();
  central.centrals.splice(central.centrals.indexOf(c1), 1);
  t.ok(
    await eventually(async () => {
      const p = await c2.render();
      return seriesOf(p, /^node_context_switches_total\{.*cluster="siteA"/).length === 11 && seriesOf(p, /^site:node_context_switches:sum\{cluster="siteB"/).length === 2;
    }, 20_000),
    "both clusters at the fallback central root",
  );
  if (Date.now() - killedAt > 19_000) t.comment(JSON.stringify(await status(c2)) + "\n" + seriesOf(await c2.render(), /cluster=|banyan_root_frames|banyan_root_dropped|banyan_relay_frames_rejected|resync/).slice(0, 60).join("\n"));
  t.comment(`failover to central2 complete after ${Date.now() - killedAt} ms`);
  page = await c2.render();
  t.same(seriesOf(page, /^node_cpu_seconds_total\{.*mode="idle"/), [], "the filter holds there too");
  t.match((await status(c2)).clusters, [{ cluster: "siteA", up: true }, { cluster: "siteB", up: true }]);
});

t.test("central - a cluster over its limits is throttled at the central root; the other flows as before", async (t) => {
  const central = centralSetup(t, 18300, { overrides: { siteB: { maxBytesPerS: 200 } } });
  const c1 = await central.start("central1");
  t.teardown(async () => {
    for (const r of central.centrals) await r.stop().catch(() => undefined);
  });
  const siteA = await startCluster({ nodes: "n[01-12]", roots: "ra[1-2]", trees: 2, basePort: 18200, series: 60, rootConfig: { central: { topology: central.file } } });
  t.teardown(() => siteA.stop());
  const siteB = await startCluster({ nodes: "n[01-12]", roots: "rb[1-2]", trees: 2, basePort: 18250, series: 60, rootConfig: { central: { topology: central.file } } });
  t.teardown(() => siteB.stop());
  t.ok(await eventually(async () => (await status(c1)).clusters?.[0]?.forwarded_nodes_up === 12, 20_000), "every node of siteA forwarded");
  t.ok(await eventually(async () => /^banyan_central_refused_total\{cluster="siteB",reason="bytes_per_s"\} [1-9]/m.test(await c1.render()), 10_000), "siteB refused past its bytes per second");
  let page = await c1.render();
  t.notMatch(page, /^banyan_central_refused_total\{cluster="siteA"/m, "nothing of siteA refused");
  let s = (await status(c1)).clusters!;
  t.equal(s[0]!.forwarded_nodes_up, 12, "siteA whole");
  t.ok(s[0]!.series >= 12 * 60, `siteA's series all there (${s[0]!.series})`);
  t.ok(s[1]!.series < 12 * 60, `siteB's arrive later and fewer (${s[1]!.series} so far)`);

  // Bytes free again, series capped: siteB fills up to its cap and no further.
  c1.reload(parseRootConfig({ intervalMs: 200, deadAfterMs: 1500, clusters: { overrides: { siteB: { maxSeries: 200 } } } }), central.topology);
  t.ok(await eventually(async () => /^banyan_central_refused_total\{cluster="siteB",reason="series"\} [1-9]/m.test(await c1.render()), 15_000), "siteB refused past its series");
  s = (await status(c1)).clusters!;
  t.ok(s[1]!.series <= 200, `siteB holds at most its maxSeries (${s[1]!.series})`);
  page = await c1.render();
  t.notMatch(page, /^banyan_central_refused_total\{cluster="siteA"/m, "still nothing of siteA refused");
  t.equal(s[0]!.forwarded_nodes_up, 12, "siteA whole");
});

t.test("central - the cluster's link on mutual TLS: its root shows its own certificate of the site CA, the central root checks it", async (t) => {
  const topology = generateCentralTopology({ clusters: [{ name: "siteA", roots: ["ra1"] }, { name: "siteB", roots: ["rb1"] }], roots: ["central1"], local: 18700 });
  const dir = mkdtempSync(join(tmpdir(), "banyan-central-tls-"));
  const file = join(dir, "central.json");
  writeFileSync(file, formatTopology(topology));
  const tls = join(dir, "tls");
  t.match(await makeCertificates({ topology: file, out: tls, days: "30" }), { made: 3 });
  const tlsOf = (name: string) => ({ caFile: join(tls, "ca.crt"), certFile: join(tls, `${name}.crt`), keyFile: join(tls, `${name}.key`) });
  const c1 = await startRoot({ topology, topologySource: file, name: "central1", log: silentLogger(), registry: new Registry() }, parseRootConfig({ intervalMs: 200, tree: { tls: tlsOf("central1") } }));
  t.teardown(() => c1.stop());
  const siteA = await startCluster({ nodes: "n[1-3]", roots: "ra1", trees: 1, basePort: 18720, series: 10, rootConfig: { central: { topology: file, tls: tlsOf("ra1") } } });
  t.teardown(() => siteA.stop());
  t.ok(await eventually(async () => seriesOf(await c1.render(), /^node_arp_entries\{.*cluster="siteA"/).length === 3, 15_000), "siteA's series over mutual TLS");
  t.ok((await status(c1)).clusters?.[0]?.up === true, "its link is up");
  // A root configured with another root's certificate does not start: its certificate must name it.
  await t.rejects(
    startCluster({ nodes: "m[1-2]", roots: "rb1", trees: 1, basePort: 18740, series: 10, rootConfig: { central: { topology: file, tls: tlsOf("ra1") } } }),
    /rb1/,
    "another root's certificate is refused at start, naming the root",
  );
});
