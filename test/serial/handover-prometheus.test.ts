import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess, type Started } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";
import { fetchRootStatuses, mergeStatuses, type ClusterStatus } from "../../src/cli/topology-status.js";
import { readTopologyFile } from "../../src/topology/topology-file.js";

const BASE = 29600;
const dir = mkdtempSync(join(tmpdir(), "banyan-handover-"));
t.setTimeout(300_000);

interface Topo {
  roots: { name: string; http: string; children: string[] }[];
  nodes: Record<string, { tree: number; parent: string; children: string[] }>;
}

/**
 * A real Prometheus scrapes both roots every second while a root and then a relay are killed and
 * started again. The unplanned failovers may cost a node its samples for the detection time; the
 * planned moves back (healing) must cost none: every node's node_load1 has a sample at least every
 * 1.5 scrape intervals through every move back, at one root or the other.
 */
t.test("handover - moves back to a healed parent leave no hole in Prometheus, at any root", async (t) => {
  const prometheus = requireProgram("prometheus");
  const topo = join(dir, "topology.json");
  const gen = banyan(["topology", "generate", "--nodes", "n[01-14]", "--roots", "r[1-2]", "--trees", "2", "--local", String(BASE), "-o", topo]);
  t.equal(gen.status, 0, gen.stderr);
  const plan = JSON.parse(readFileSync(topo, "utf8")) as Topo;
  const procs = new Map<string, Started>();
  t.teardown(async () => {
    for (const p of [...procs.values()].reverse()) await p.stop();
  });
  const root = (name: string): Started =>
    startBanyan(["root", "--topology", topo, "--name", name, "--set", "intervalMs=1000", "--set", "deadAfterMs=3000", "--set", "keyframeIntervalMs=30000"]);
  const agent = (name: string): Started =>
    startBanyan([
      "agent", "--topology", topo, "--name", name, "--source", "synthetic",
      "--set", "synthetic.series=80", "--set", "intervalMs=1000", "--set", "ackTimeoutMs=1500", "--set", "healAfterMs=3000", "--set", "keyframeIntervalMs=30000",
    ]);
  for (const r of plan.roots) procs.set(r.name, root(r.name));
  for (const n of Object.keys(plan.nodes)) procs.set(n, agent(n));
  // What `banyan topology status --json` prints, asked in-process: a CLI spawned every 250 ms took
  // most of a core from the cluster under test.
  const topology = readTopologyFile(topo);
  const status = async (): Promise<ClusterStatus> => mergeStatuses(topology, await fetchRootStatuses(topology, 2000));
  const settled = async (): Promise<boolean> => {
    const s = await status();
    return s.trees.every((x) => x.up === x.nodes && x.away_nodes.length === 0);
  };
  t.ok(await eventually(settled, 30_000, 250), "14 nodes up at their planned parents");

  const config = join(dir, "prometheus.yml");
  writeFileSync(config, `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: banyan\n    honor_labels: true\n    static_configs:\n      - targets: [${plan.roots.map((r) => `"${r.http}"`).join(", ")}]\n`);
  const promPort = BASE + 100;
  const prom = startProcess(prometheus, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`]);
  t.teardown(() => prom.stop());
  const api = async (path: string): Promise<unknown> => {
    const r = await httpText(`http://127.0.0.1:${promPort}${path}`);
    return r.status === 200 ? (JSON.parse(r.text) as { data: unknown }).data : null;
  };
  const everyNode = async (): Promise<boolean> => {
    const d = (await api(`/api/v1/query?query=${encodeURIComponent("count(node_load1)")}`)) as { result: { value: [number, string] }[] } | null;
    return d?.result[0]?.value[1] === "14";
  };
  t.ok(await eventually(everyNode, 60_000, 500), "Prometheus sees node_load1 of all 14 nodes");
  await sleep(3000);

  // Windows where a hole is allowed: from a kill until the failover's detection (ack timeout 1 s,
  // dead after 1.5 s) and the keyframe at the other root are through. The moves back are not in them.
  const allowed: [number, number][] = [];
  const r1 = plan.roots.find((r) => r.name === "r1")!;
  // 1. The root of tree 0 dies and comes back: its nodes go to r2, then move back to r1 (planned).
  let killedAt = Date.now();
  procs.get("r1")!.proc.kill("SIGKILL");
  allowed.push([killedAt, killedAt + 4000]);
  t.ok(await eventually(async () => (await status()).trees.some((x) => x.away_nodes.length > 0), 20_000, 250), "r1's nodes failed over to r2");
  await sleep(Math.max(0, killedAt + 4000 - Date.now()));
  procs.set("r1", root("r1"));
  t.ok(await eventually(settled, 60_000, 250), "after r1's restart its nodes moved back to it");
  await sleep(3000);

  // 2. A relay of tree 1 dies and comes back: its children go to their grandparent, then back.
  const relay = Object.entries(plan.nodes).find(([, n]) => n.tree === 1 && n.children.length > 0 && n.parent !== "r2")![0];
  killedAt = Date.now();
  procs.get(relay)!.proc.kill("SIGKILL");
  allowed.push([killedAt, killedAt + 4000]);
  t.ok(await eventually(async () => (await status()).trees.some((x) => x.away_nodes.some((a) => plan.nodes[relay]!.children.includes(a.node))), 20_000, 250), `${relay}'s children failed over`);
  await sleep(Math.max(0, killedAt + 4000 - Date.now()));
  procs.set(relay, agent(relay));
  t.ok(await eventually(settled, 60_000, 250), `after ${relay}'s restart its children moved back under it`);
  await sleep(4000);
  const end = Date.now();

  // Every node's raw samples of node_load1 over the whole run (a restarted relay is a new process:
  // its own samples stop while it is dead, so it is left out).
  const windowS = Math.ceil((end - killedAt) / 1000) + 60;
  const d = (await api(`/api/v1/query?query=${encodeURIComponent(`node_load1[${windowS}s]`)}&time=${end / 1000}`)) as { result: { metric: { instance: string }; values: [number, string][] }[] };
  t.equal(d.result.length, 14, "a node_load1 series per node");
  const holes: string[] = [];
  const firstAllowed = allowed[0]![0];
  for (const s of d.result) {
    if (s.metric.instance === relay) continue;
    const times = s.values.map(([ts]) => ts * 1000).filter((ms) => ms >= firstAllowed - 5000);
    for (let k = 1; k < times.length; k++) {
      const gap = times[k]! - times[k - 1]!;
      const excused = allowed.some(([a, b]) => times[k - 1]! < b && times[k]! > a);
      if (gap > 1500 && !excused) holes.push(`${s.metric.instance}: no sample for ${gap} ms from ${new Date(times[k - 1]!).toISOString()}`);
    }
  }
  t.same(holes, [], "no hole outside the failovers' detection windows: the moves back were make-before-break");
  t.comment(`root r1 at ${r1.http}; relay killed: ${relay}`);
});
