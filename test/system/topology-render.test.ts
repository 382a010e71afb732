import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { generateTopology } from "../../topology/generate.js";
import { expandHostlist } from "../../topology/hostlist.js";
import { renderTopology } from "../../topology/renderers.js";
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
