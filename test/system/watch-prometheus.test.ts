import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { eventually, sleep, startCluster } from "../fixtures/cluster.js";
import { httpText, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 18600;
type Element = { metric: Record<string, string>; value: [number, string] };

/** An instant-vector result as {labels → value}, sorted, for comparing two answers. */
/** Equal keys, values equal up to float summation order (1e-9 relative): Prometheus adds in its own order. */
function close(t: Tap.Test, got: Record<string, number>, want: Record<string, number>, msg: string): void {
  const bad = Object.keys({ ...got, ...want }).filter((k) => !(k in got && k in want && Math.abs(got[k]! - want[k]!) <= 1e-9 * Math.max(1, Math.abs(want[k]!))));
  t.same(bad.map((k) => [k, got[k], want[k]]), [], msg);
}

const asMap = (r: Element[]): Record<string, number> => Object.fromEntries(r.map((e) => [JSON.stringify(Object.entries(e.metric).filter(([k]) => k !== "__name__").sort()), Number(e.value[1])]).sort());

t.test("system - the watch API's aggregation at the root equals the same PromQL over the real Prometheus scraping the root", async (t) => {
  const prometheus = requireProgram("prometheus");
  const cluster = await startCluster({ nodes: "n[01-10]", roots: "r1", trees: 1, basePort: BASE, series: 40, intervalMs: 250, rootConfig: { deadAfterMs: 5000 } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 10, 20_000), "all up");
  const root = cluster.roots[0]!;
  // Values still, so Prometheus' last scrape and the root hold the same values.
  await sleep(1000);
  for (const s of cluster.sources.values()) s.frozen = true;
  const dir = mkdtempSync(join(tmpdir(), "banyan-watch-prom-"));
  writeFileSync(join(dir, "prometheus.yml"), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: banyan\n    honor_labels: true\n    static_configs:\n      - targets: ["127.0.0.1:${root.httpPort}"]\n`);
  const promPort = BASE + 90;
  const prom = startProcess(prometheus, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`]);
  t.teardown(() => prom.stop());
  const fromProm = async (q: string): Promise<Element[]> => {
    const r = await httpText(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    return r.status === 200 ? (JSON.parse(r.text) as { data: { result: Element[] } }).data.result : [];
  };
  const fromRoot = async (q: string): Promise<Element[]> => {
    const r = await httpText(`http://127.0.0.1:${root.httpPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    return (JSON.parse(r.text) as { data: { result: Element[] } }).data.result;
  };
  t.ok(await eventually(async () => (await fromProm("count(node_context_switches_total)"))[0]?.value[1] === "10", 60_000, 500), "Prometheus has every node");
  await sleep(2500);
  const queries = [
    "sum by (job) (node_context_switches_total)",
    'sum by (mode) (node_cpu_seconds_total{mode!="idle"})',
    'avg by (cpu) (node_cpu_seconds_total{mode="user"})',
    'max by (instance) (node_cpu_seconds_total{cpu="1"})',
    'min by (device) (node_disk_discards_completed_total)',
    "count by (job) (node_cpu_seconds_total)",
    'node_cpu_seconds_total{instance="n03",mode="system"}',
  ];
  for (const q of queries) {
    const p = asMap(await fromProm(q));
    const r = asMap(await fromRoot(q));
    t.ok(Object.keys(p).length > 0, `${q}: Prometheus answers`);
    close(t, r, p, `${q}: the root's answer is Prometheus'`);
  }
  // And the watch's first message is the same answer as the one-shot query.
  const res = await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/watch?match[]=node_cpu_seconds_total{mode!="idle"}&agg=sum&by=mode`);
  const reader = res.body!.getReader();
  let text = "";
  while (!text.includes("\n\n")) text += Buffer.from((await reader.read()).value!).toString();
  await reader.cancel();
  const snapshot = JSON.parse(/^data: (.*)$/m.exec(text)![1]!) as { result: Element[] };
  close(t, asMap(snapshot.result), asMap(await fromProm('sum by (mode) (node_cpu_seconds_total{mode!="idle"})')), "the watch's snapshot too");
});
