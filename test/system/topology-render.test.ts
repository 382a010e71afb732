import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { expandHostlist } from "../../src/topology/hostlist.js";
import { renderTopology } from "../../src/tools/topology/renderers.js";
import { requireProgram } from "../fixtures/programs.js";

const { topology } = generateTopology({ nodes: expandHostlist("node[001-100]"), roots: expandHostlist("svc[1-3]") });

t.test("render prometheus - the real promtool accepts the scrape config, honor_labels on", async (t) => {
  const promtool = requireProgram("promtool");
  const text = renderTopology(topology, "prometheus", { scrapeInterval: "1s" });
  t.match(text, /honor_labels: true/);
  for (const r of topology.roots) t.match(text, `- "${r.http}"`);
  t.notMatch(text, /^\s+labels:/m, "no per-root target label: series keep their identity across roots");
  const dir = mkdtempSync(join(tmpdir(), "banyan-prom-"));
  const file = join(dir, "prometheus.yml");
  writeFileSync(file, text);
  const res = spawnSync(promtool, ["check", "config", file], { encoding: "utf8" });
  t.equal(res.status, 0, `promtool check config: ${res.stdout}${res.stderr}`);
});

t.test("render prometheus --part job - pasted under the scrape_configs: of an existing prometheus.yml (Prometheus 2.42: no scrape_config_files), promtool accepts it", async (t) => {
  const promtool = requireProgram("promtool");
  const job = renderTopology(topology, "prometheus", { scrapeInterval: "1s", part: "job" });
  t.match(job, /^- job_name: "banyan"$/m, "the job alone, at the left margin");
  t.notMatch(job, /^scrape_configs:/m);
  const dir = mkdtempSync(join(tmpdir(), "banyan-prom-"));
  const file = join(dir, "prometheus.yml");
  const site = "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: node\n    static_configs:\n      - targets: [\"localhost:9100\"]\n";
  writeFileSync(file, site + job.split("\n").map((l) => (l === "" ? l : `  ${l}`)).join("\n"));
  const res = spawnSync(promtool, ["check", "config", file], { encoding: "utf8" });
  t.equal(res.status, 0, `promtool check config: ${res.stdout}${res.stderr}`);
  t.match(renderTopology(topology, "prometheus", { scrapeInterval: "1s" }), /scrape_config_files: \[this file\] \(Prometheus 2\.43 and later/, "the whole file says which Prometheus can include it");
});

t.test("render dot - the real dot draws it, one cluster per tree and one edge per node", async (t) => {
  const dot = requireProgram("dot");
  const text = renderTopology(topology, "dot");
  t.equal((text.match(/subgraph cluster_tree/g) ?? []).length, 8);
  t.equal((text.match(/ -> /g) ?? []).length, 100);
  const res = spawnSync(dot, ["-Tsvg"], { input: text, encoding: "utf8" });
  t.equal(res.status, 0, res.stderr);
  t.match(res.stdout, /<svg/);
  t.match(res.stdout, /node001/);
});
