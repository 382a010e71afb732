import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { SlurmSource } from "../../../src/agent/slurm/slurm-source.js";
import { SLURMCTLD_PAGES, fromSlurmctldPages } from "../../../src/agent/slurm/slurmctld-metrics.js";
import { silentLogger } from "../../../src/core/logger.js";
import { recorder } from "./sources.test.js";

const FIX = fileURLToPath(new URL("../../fixtures/slurm/", import.meta.url));
const page = (name: string): string => readFileSync(join(FIX, "slurmctld-metrics", `${name}.txt`), "utf8");

t.test("slurmctld metrics - Slurm 25.11's pages under prometheus-slurm-exporter's names", async (t) => {
  const samples = fromSlurmctldPages(Object.fromEntries(SLURMCTLD_PAGES.map((p) => [p, page(p)])));
  const v = (name: string, labels: Record<string, string> = {}): number | undefined => samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
  t.equal(v("slurm_queue_running"), 3);
  t.equal(v("slurm_queue_pending"), 5);
  t.equal(v("slurm_queue_node_fail"), 0, "node_failed is the exporter's node_fail");
  t.equal(v("slurm_queue_pending_dependency"), undefined, "not on the page: left out, not 0");
  t.equal(v("slurm_nodes_mix"), 1, "mixed is mix");
  t.equal(v("slurm_nodes_comp"), 0);
  t.same([v("slurm_cpus_alloc"), v("slurm_cpus_idle"), v("slurm_cpus_other"), v("slurm_cpus_total")], [12, 16, 4, 32], "CPUs summed over the nodes; other is the rest");
  t.same([v("slurm_partition_cpus_allocated", { partition: "debug" }), v("slurm_partition_cpus_idle", { partition: "debug" }), v("slurm_partition_cpus_other", { partition: "gpu" }), v("slurm_partition_cpus_total", { partition: "gpu" })], [12, 4, 4, 16]);
  t.equal(v("slurm_partition_jobs_pending", { partition: "gpu" }), 1);
  t.equal(v("slurm_scheduler_last_cycle"), 288);
  t.equal(v("slurm_scheduler_backfill_mean_cycle"), 301);
  t.equal(samples.find((s) => s.name === "slurm_scheduler_backfilled_jobs_since_start_total")?.counter, true);
  t.equal(v("slurm_user_jobs_running", { user: "bob" }), 2, "username is the exporter's user");
  t.equal(v("slurm_account_cpus_running", { account: "proj" }), 12);
  t.same(fromSlurmctldPages({}), [], "no pages: nothing");
});

t.test("slurmctld metrics - the source reads the pages instead of squeue and sdiag, and falls back to them when slurmctld serves none", async (t) => {
  let serve = true;
  const server = createServer((req, res) => {
    const name = /^\/metrics\/([a-z-]+)$/.exec(req.url ?? "")?.[1];
    if (!serve || name === undefined || !(SLURMCTLD_PAGES as readonly string[]).includes(name)) return void res.writeHead(404).end("not found\n");
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(page(name));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  // Stand-in commands that say they ran: squeue's answer differs from the pages' (1 running, not 3).
  const dir = mkdtempSync(join(tmpdir(), "banyan-slurmctld-"));
  writeFileSync(join(dir, "sinfo"), `#!/bin/sh\ncase "$*" in *NodeHost*) printf 'c1|allocated|8/0/0/8|100|1000|gpu:2|gpu:1(IDX:0)\\n';; *%D*) cat ${FIX}sinfo-nodes.txt;; *%R*) cat ${FIX}sinfo-partitions.txt;; *) cat ${FIX}sinfo-cpus.txt;; esac\n`);
  writeFileSync(join(dir, "squeue"), "#!/bin/sh\necho 'RUNNING|debug|None'\n");
  writeFileSync(join(dir, "sdiag"), "#!/bin/sh\nexit 1\n");
  for (const f of ["sinfo", "squeue", "sdiag"]) chmodSync(join(dir, f), 0o755);
  const src = new SlurmSource({ intervalMs: 60_000, timeoutMs: 5000, binDir: dir, slurmctldUrl: url }, silentLogger());
  t.teardown(() => src.close());
  await src.pollOnce();
  const rec = recorder();
  src.collect(rec);
  t.equal(rec.values.get("slurm_queue_running"), 3, "from slurmctld's page");
  t.equal(rec.values.get('banyan_slurm_up{command="slurmctld /metrics"}'), 1);
  t.notOk([...rec.values.keys()].some((k) => k.includes('command="squeue') || k.includes('command="sdiag')), "squeue and sdiag were not asked");
  t.equal(rec.values.get("slurm_gpus_total"), 2, "the GPUs from sinfo -N, which the pages do not have");
  serve = false;
  await src.pollOnce();
  src.collect(rec);
  t.equal(rec.values.get("slurm_queue_running"), 1, "slurmctld serves none (404): squeue's answer");
  t.equal(rec.values.get('banyan_slurm_up{command="slurmctld /metrics"}'), 0);
});
