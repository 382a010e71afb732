import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parse as parseYaml } from "yaml";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";
import { REPO, SLURM_USER, type SlurmCluster, slurmHost, startSlurm } from "../fixtures/slurm-cluster.js";

/**
 * `banyan dashboards generate`, every panel's expression and every variable's query run by the real
 * Prometheus scraping a running cluster: a real one-node Slurm whose prolog starts the agent (with
 * the recorded nvidia-smi of a 4-GPU node), a job holding one of the node's GPUs, a Banyan root.
 * Each expression must answer at several instants (no typo'd metric, no empty panel), and each
 * metric it names must exist.
 */
const BASE = 32200;
const PROM_PORT = BASE + 60;
const REPLAY = join(REPO, "test/fixtures/nvidia-smi-replay");
/** Grafana's $__rate_interval for a 1 s scrape is 4 s; 5 s keeps five samples in each window. */
const RATE_INTERVAL = "5s";
const INSTANTS = 3;
const STEP_S = 3;

interface Target {
  readonly expr: string;
}
interface Panel {
  readonly type: string;
  readonly title: string;
  readonly targets?: Target[];
  readonly datasource?: { uid: string };
  readonly gridPos: { x: number; y: number; w: number; h: number };
}
interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly panels: Panel[];
  readonly templating: { list: { name: string; type: string; query: unknown; definition?: string }[] };
}

async function query(expr: string, timeS: number): Promise<{ ok: boolean; series: number; error?: string }> {
  const body = JSON.parse((await httpText(`http://127.0.0.1:${PROM_PORT}/api/v1/query?query=${encodeURIComponent(expr)}&time=${timeS}`)).text) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: unknown[] };
  };
  if (body.status !== "success") return { ok: false, series: 0, error: body.error ?? "" };
  const r = body.data!;
  const series = r.resultType === "scalar" ? 1 : (r.result as { value: [number, string] }[]).filter((x) => Number.isFinite(Number(x.value[1]))).length;
  return { ok: true, series };
}

t.test("dashboards - every panel of the generated dashboards answers from a real Prometheus scraping a running cluster", async (t) => {
  const prometheus = requireProgram("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "banyan-dashboards-"));
  const out = join(dir, "dashboards");
  const gen = banyan(["dashboards", "generate", "--out", out, "--refresh", "10s"]);
  t.equal(gen.status, 0, gen.stderr);
  t.same(readdirSync(out).sort(), ["banyan-cluster.json", "banyan-health.json", "banyan-job.json", "banyan-provider.yaml", "banyan-user.json"]);
  const provider = parseYaml(readFileSync(join(out, "banyan-provider.yaml"), "utf8")) as { providers: { type: string; options: { path: string } }[] };
  t.match(provider.providers[0], { type: "file", options: { path: out } }, "a file provider for the directory");
  const dashboards = readdirSync(out)
    .filter((f) => f.endsWith(".json"))
    .map((f) => JSON.parse(readFileSync(join(out, f), "utf8")) as Dashboard);

  const { topo, run, defaults } = slurmHost(dir, BASE, { intervalMs: 1000, sources: `nvidiaSmi: {enabled: true, path: ${REPLAY}}` });
  writeFileSync(
    join(dir, "prometheus.yml"),
    `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - { job_name: banyan, honor_labels: true, static_configs: [{ targets: ["127.0.0.1:${BASE + 1}"] }] }\n`,
  );
  const root = startBanyan(["root", "--topology", topo, "--name", "r1"]);
  const prom = startProcess(prometheus, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${PROM_PORT}`]);
  let slurm: SlurmCluster | null = null;
  t.teardown(async () => {
    await slurm?.stop(join(run, "agent.pid"));
    await Promise.all([root.stop(), prom.stop()]);
  });
  slurm = await startSlurm(defaults, { gpus: 2 });
  // A job on one of the node's two GPUs that reads and writes a little and burns some CPU.
  const job = slurm.submit(`dd if=/dev/zero of=/tmp/banyan-dash-$$ bs=1M count=20 conv=fsync; rm -f /tmp/banyan-dash-$$; timeout 40 sh -c 'while :; do :; done'; sleep 60`, ["-n", "1", "--gres=gpu:1"]);
  const has = async (expr: string): Promise<boolean> => {
    try {
      return (await query(expr, Date.now() / 1000)).series > 0;
    } catch {
      return false; // Prometheus not up yet
    }
  };
  const ready = await eventually(async () => (await has(`banyan_job_gpu_info{job_id="${job}"}`)) && (await has("banyan_node_partition_info")) && (await has("DCGM_FI_DEV_GPU_UTIL")), 60_000, 500);
  if (!t.ok(ready, `Prometheus has job ${job} with its GPU, the node's partition and its GPUs' series`)) {
    t.comment(readFileSync(join(dir, "job.log"), "utf8").slice(-2000));
    return;
  }
  // Enough history for the rate windows at the first instant, then the instants themselves.
  await sleep((INSTANTS * STEP_S + 8) * 1000);
  const end = Date.now() / 1000 - 2;
  const instants = Array.from({ length: INSTANTS }, (_, i) => end - (INSTANTS - 1 - i) * STEP_S);

  // The variables' values, as Grafana asks them (label_values(selector, label)).
  const values: Record<string, string> = { cluster: ".*", __rate_interval: RATE_INTERVAL };
  for (const d of dashboards) {
    for (const v of d.templating.list.filter((x) => x.type === "query")) {
      const m = /^label_values\((.+), (\w+)\)$/.exec(v.definition ?? "");
      if (!t.ok(m, `${d.uid}: variable ${v.name} is label_values(selector, label)`)) continue;
      const sel = m![1]!.replaceAll("$cluster", ".*");
      const body = JSON.parse((await httpText(`http://127.0.0.1:${PROM_PORT}/api/v1/label/${m![2]}/values?match[]=${encodeURIComponent(sel)}`)).text) as { data: string[] };
      // The cluster label is a central root's: on a cluster's own root the variable is empty (All).
      if (v.name === "cluster") continue;
      t.ok(body.data.length > 0, `${d.uid}: variable ${v.name} has values (${body.data.join(", ")})`);
      values[v.name] = body.data[0] ?? "";
    }
  }
  t.equal(values["job_id"], job, "the job variable lists the job");
  t.equal(values["user"], SLURM_USER, "the user variable lists its user");
  t.equal(values["partition"], "debug", "the partition variable lists the node's partition");
  const substitute = (expr: string): string => expr.replace(/\$(\w+)/g, (all, name: string) => values[name] ?? all);

  const failures: string[] = [];
  const names = new Set<string>();
  let checked = 0;
  for (const d of dashboards) {
    for (const p of d.panels.filter((x) => x.type !== "row")) {
      t.equal(p.datasource?.uid, "${datasource}", `${d.uid} / ${p.title}: the data source variable`);
      t.ok(p.gridPos.x + p.gridPos.w <= 24, `${d.uid} / ${p.title}: within 24 columns`);
      for (const target of p.targets ?? []) {
        const expr = substitute(target.expr);
        t.notMatch(expr, /\$\w/, `${d.uid} / ${p.title}: every variable of ${target.expr} is defined`);
        for (const n of expr.matchAll(/\b(?:node|banyan|DCGM)_\w+/g)) names.add(n[0]);
        checked++;
        for (const at of instants) {
          const r = await query(expr, at);
          if (!r.ok || r.series === 0) {
            failures.push(`${d.uid} / ${p.title}: ${r.ok ? "no data" : r.error} at ${at.toFixed(0)}: ${expr}`);
            break;
          }
        }
      }
    }
  }
  t.comment(`${checked} expressions in ${dashboards.length} dashboards, each at ${INSTANTS} instants ${STEP_S} s apart`);
  t.ok(checked > 60, "the dashboards have their panels");
  t.same(failures, [], "every expression answers with data");
  const absent: string[] = [];
  for (const n of names) if ((await query(`count({__name__="${n}"})`, end)).series === 0) absent.push(n);
  t.same(absent, [], `each of the ${names.size} metrics the expressions name exists`);
});
