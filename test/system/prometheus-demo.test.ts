import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 28400;
const NODES = 32;

t.test("system - the real Prometheus scrapes a running demo's roots and sees every node", async (t) => {
  const prometheus = requireProgram("prometheus");
  const promtool = requireProgram("promtool");
  const demo = startBanyan(["demo", "--nodes", String(NODES), "--trees", "8", "--roots", "2", "--base-port", String(BASE), "--series", "100"]);
  t.teardown(() => demo.stop("SIGINT"));
  const roots = [`127.0.0.1:${BASE + 1}`, `127.0.0.1:${BASE + 3}`];
  t.ok(await eventually(async () => (await Promise.all(roots.map((r) => httpText(`http://${r}/-/ready`)))).every((r) => r.status === 200), 30_000), "both roots ready");
  await eventually(() => /Ctrl-C stops the cluster/.test(demo.output()), 30_000);
  const scrapeFile = /also in (\S+)\)/.exec(demo.output())?.[1];
  if (!t.ok(scrapeFile, "the demo names its scrape config")) t.comment(demo.output());

  // The roots' pages parse: promtool exits 1 on a parse error, 3 on lint warnings only (as node_exporter's own page does).
  t.ok(await eventually(async () => (await httpText(`http://${roots[0]}/metrics`)).text.includes('instance="node01"'), 20_000), "node01 reached its root");
  for (const r of roots) {
    const page = await httpText(`http://${r}/metrics`);
    const check = spawnSync(promtool, ["check", "metrics"], { input: page.text, encoding: "utf8" });
    t.not(check.status, 1, `promtool check metrics on ${r}: ${check.stderr.split("\n").filter((l) => !/snake_case|counter metrics should|should have "_total"/.test(l)).slice(0, 5).join("\n")}`);
    const om = await httpText(`http://${r}/metrics`, { accept: "application/openmetrics-text; version=1.0.0" });
    t.match(om.text, /# EOF\n$/, "OpenMetrics page ends with # EOF");
  }

  const dir = mkdtempSync(join(tmpdir(), "banyan-prom-"));
  const config = join(dir, "prometheus.yml");
  writeFileSync(config, "global:\n  scrape_interval: 1s\n" + readFileSync(scrapeFile!, "utf8"));
  const promPort = BASE + 200;
  const prom = startProcess(prometheus, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`]);
  t.teardown(() => prom.stop());
  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const r = await httpText(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    if (r.status !== 200) return [];
    return (JSON.parse(r.text) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
  };
  const everyNode = 'count(count by (instance) (node_cpu_seconds_total{job=~"node|synthetic"}))';
  if (!t.ok(await eventually(async () => (await query(everyNode))[0]?.value[1] === String(NODES), 60_000, 500), `PromQL sees all ${NODES} nodes' series`)) {
    t.comment(prom.output().slice(-3000));
  }
  const byJob = await query('count by (job) (count by (job, instance) (node_cpu_seconds_total))');
  const jobs = Object.fromEntries(byJob.map((r) => [r.metric["job"], r.value[1]]));
  t.same(jobs, { node: "1", synthetic: String(NODES - 1) }, "honor_labels kept each node's own job");
  const up = await query('sum(max by (instance) (banyan_node_up))');
  t.equal(up[0]?.value[1], String(NODES), "banyan_node_up says every node is up");
  const rootsUp = await query('up{job="banyan"}');
  t.equal(rootsUp.length, 2, "Prometheus scrapes two targets, not 32");
  const events = await query('sum(banyan_events_total{type="root_restart"})');
  t.equal(events[0]?.value[1], "2", "the roots' events series reach Prometheus (one root_restart each)");
  t.equal(await demo.stop("SIGINT"), 0, "Ctrl-C stops the demo");
  t.ok(existsSync(scrapeFile!) && /scrape_configs:/.test(readFileSync(scrapeFile!, "utf8")), "the scrape config it printed is still there after it stopped (a Prometheus set up with it finds the next demo)");
});
