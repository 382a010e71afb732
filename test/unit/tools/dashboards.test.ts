import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parse as parseYaml } from "yaml";
import { DASHBOARDS } from "../../../src/tools/dashboards/banyan-dashboards.js";
import { dashboardJson, queriesOf } from "../../../src/tools/dashboards/grafana.js";
import { providerYaml } from "../../../src/cli/dashboards-command.js";
import { banyan } from "../../fixtures/banyan-cli.js";

interface Grid {
  x: number;
  y: number;
  w: number;
  h: number;
}
const overlap = (a: Grid, b: Grid): boolean => a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

t.test("dashboards - shape: unique uids and ids, panels on the grid without overlap, every variable defined", async (t) => {
  const uids = new Set<string>();
  for (const [file, make] of Object.entries(DASHBOARDS)) {
    const spec = make();
    const json = dashboardJson(spec, { refresh: "5s" }) as { uid: string; id?: number; panels: { id: number; type: string; gridPos: Grid; targets?: { expr: string; datasource: { uid: string } }[] }[]; templating: { list: { name: string }[] } };
    t.notOk(uids.has(json.uid), `${file}: uid ${json.uid} is its own`);
    uids.add(json.uid);
    t.equal(json.id, undefined, `${file}: no numeric id (provisioning sets it)`);
    t.equal(new Set(json.panels.map((p) => p.id)).size, json.panels.length, `${file}: panel ids unique`);
    for (const [i, a] of json.panels.entries()) {
      t.ok(a.gridPos.x >= 0 && a.gridPos.x + a.gridPos.w <= 24, `${file}: panel ${a.id} within 24 columns`);
      for (const b of json.panels.slice(i + 1)) if (overlap(a, b)) t.fail(`${file}: panels ${a.id} and ${b.id} overlap`);
    }
    const vars = new Set(["__rate_interval", ...json.templating.list.map((v) => v.name)]);
    for (const q of queriesOf(spec)) {
      for (const m of q.expr.matchAll(/\$(\w+)/g)) t.ok(vars.has(m[1]!), `${file} / ${q.panel}: $${m[1]} is defined`);
      let depth = 0;
      for (const c of q.expr) if ((depth += c === "(" ? 1 : c === ")" ? -1 : 0) < 0) break;
      t.equal(depth, 0, `${file} / ${q.panel}: parentheses balance`);
    }
    for (const p of json.panels.filter((x) => x.type !== "row")) for (const target of p.targets ?? []) t.equal(target.datasource.uid, "${datasource}");
  }
  t.equal(uids.size, 4, "four dashboards");
});

t.test("dashboards - the provider file points Grafana at the directory", async (t) => {
  const y = parseYaml(providerYaml("/var/lib/grafana/banyan", "HPC")) as { apiVersion: number; providers: { folder: string; type: string; options: { path: string } }[] };
  t.match(y, { apiVersion: 1, providers: [{ folder: "HPC", type: "file", options: { path: "/var/lib/grafana/banyan" } }] });
});

t.test("dashboards - the command writes the files, lists the expressions, and refuses a bad refresh", async (t) => {
  const out = join(mkdtempSync(join(tmpdir(), "banyan-dash-")), "a/b");
  const r = banyan(["dashboards", "generate", "--out", out, "--refresh", "1m", "--folder", "HPC"]);
  t.equal(r.status, 0, r.stderr);
  t.same(readdirSync(out).sort(), ["banyan-cluster.json", "banyan-health.json", "banyan-job.json", "banyan-provider.yaml", "banyan-user.json"]);
  t.equal((JSON.parse(readFileSync(join(out, "banyan-job.json"), "utf8")) as { refresh: string }).refresh, "1m");
  const list = banyan(["dashboards", "generate", "--out", out, "--list"]);
  t.equal(list.status, 0);
  t.ok(list.stdout.split("\n").filter((l) => l.startsWith("banyan-job.json\t")).some((l) => l.includes('job_id="$job_id"')), "the job's expressions select $job_id");
  const bad = banyan(["dashboards", "generate", "--out", out, "--refresh", "often"]);
  t.equal(bad.status, 2, "a bad refresh exits 2");
  t.match(bad.stderr, /--refresh "often": expected/);
});
