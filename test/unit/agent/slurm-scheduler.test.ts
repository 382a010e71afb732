import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import fc from "fast-check";
import { MAX_LABEL_VALUES, gpuCount, parseAccountsAndUsers, parseCpus, parseFairshare, parseJobs, parseNodeStates, parseNodes, parsePartitionCpus, parseSdiag } from "../../../src/agent/slurm/scheduler-metrics.js";
import { SlurmSource } from "../../../src/agent/slurm/slurm-source.js";
import { silentLogger } from "../../../src/core/logger.js";
import { recorder } from "./sources.test.js";

/** Output of a real one-node Slurm 22.05 (Debian slurm-wlm) with jobs running, pending and failed. */
const fixture = (name: string): string => readFileSync(fileURLToPath(new URL(`../../fixtures/slurm/${name}`, import.meta.url)), "utf8");
const asMap = (xs: { name: string; labels: Record<string, string>; value: number }[]): Record<string, number> =>
  Object.fromEntries(xs.map((x) => [`${x.name}${Object.keys(x.labels).length ? JSON.stringify(x.labels) : ""}`, x.value]));

t.test("slurm - real sinfo, squeue and sdiag output under prometheus-slurm-exporter's names", async (t) => {
  const nodes = asMap(parseNodeStates(fixture("sinfo-nodes.txt")));
  t.equal(nodes["slurm_nodes_alloc"], 1);
  t.equal(nodes["slurm_nodes_idle"], 0);
  t.same(Object.keys(nodes).length, 10, "every state of the reference exporter is reported, zeros included");
  t.same(asMap(parseNodeStates("3|idle\n2|down*\n1|drained\n4|mixed\n1|allocated+\n")), { ...asMap(parseNodeStates("")), slurm_nodes_idle: 3, slurm_nodes_down: 2, slurm_nodes_drain: 1, slurm_nodes_mix: 4, slurm_nodes_alloc: 1 });
  t.same(asMap(parseCpus(fixture("sinfo-cpus.txt"))), { slurm_cpus_alloc: 2, slurm_cpus_idle: 0, slurm_cpus_other: 0, slurm_cpus_total: 2 });
  t.same(asMap(parsePartitionCpus(fixture("sinfo-partitions.txt"))), {
    'slurm_partition_cpus_allocated{"partition":"debug"}': 2,
    'slurm_partition_cpus_idle{"partition":"debug"}': 0,
    'slurm_partition_cpus_other{"partition":"debug"}': 0,
    'slurm_partition_cpus_total{"partition":"debug"}': 2,
  });
  const jobs = asMap(parseJobs(fixture("squeue.txt")));
  t.equal(jobs["slurm_queue_running"], 2);
  t.equal(jobs["slurm_queue_pending"], 3);
  t.equal(jobs["slurm_queue_pending_dependency"], 1);
  t.equal(jobs["slurm_queue_failed"], 4);
  t.equal(jobs['slurm_partition_jobs_pending{"partition":"debug"}'], 4, "pending per partition counts the dependency-held job too");
  const sdiag = asMap(parseSdiag(fixture("sdiag.txt")));
  t.equal(sdiag["slurm_scheduler_threads"], 3);
  t.equal(sdiag["slurm_scheduler_last_cycle"], 310);
  t.equal(sdiag["slurm_scheduler_mean_cycle"], 175);
  t.equal(sdiag["slurm_scheduler_backfilled_jobs_since_start_total"], 0);
  for (const name of ["slurm_scheduler_backfill_depth_mean", "slurm_scheduler_backfill_mean_cycle", "slurm_scheduler_cycle_per_minute"]) {
    t.equal(sdiag[name], 0, `${name}: not in this sdiag, 0 as prometheus-slurm-exporter exports it`);
  }
  t.same(parseCpus("garbage"), []);
});

t.test("slurm - the source polls in the background, and a failing command leaves nothing stale", async (t) => {
  // Commands as scripts that print the recorded output, one of them failing: the source runs
  // whatever sinfo/squeue/sdiag it finds in binDir.
  const dir = mkdtempSync(join(tmpdir(), "banyan-slurm-bin-"));
  const fixtures = fileURLToPath(new URL("../../fixtures/slurm/", import.meta.url));
  writeFileSync(join(dir, "sinfo"), `#!/bin/sh\ncase "$*" in *%D*) cat ${fixtures}sinfo-nodes.txt;; *%R*) cat ${fixtures}sinfo-partitions.txt;; *) cat ${fixtures}sinfo-cpus.txt;; esac\n`);
  writeFileSync(join(dir, "squeue"), `#!/bin/sh\ncat ${fixtures}squeue.txt\n`);
  writeFileSync(join(dir, "sdiag"), "#!/bin/sh\necho 'sdiag: Access/permission denied' >&2\nexit 1\n");
  for (const f of ["sinfo", "squeue", "sdiag"]) chmodSync(join(dir, f), 0o755);
  const src = new SlurmSource({ intervalMs: 60_000, timeoutMs: 5000, binDir: dir }, silentLogger());
  t.teardown(() => src.close());
  await src.pollOnce();
  const rec = recorder();
  src.collect(rec);
  t.equal(rec.values.get("slurm_queue_running"), 2);
  t.equal(rec.values.get('slurm_partition_jobs_pending{partition="debug"}'), 4);
  t.equal(rec.values.get('banyan_slurm_up{command="sdiag"}'), 0, "sdiag not permitted: said, not fatal");
  t.notOk([...rec.values.keys()].some((k) => k.startsWith("slurm_scheduler_")));
  writeFileSync(join(dir, "squeue"), "#!/bin/sh\nexit 1\n");
  await src.pollOnce();
  src.collect(rec);
  t.notOk(rec.values.has("slurm_queue_running"), "a failed squeue drops the queue metrics");
  t.equal(rec.values.get('banyan_slurm_up{command="squeue -h -a -r -o %T|%P|%r --states=all"}'), 0);
});

t.test("slurm - per account and user, fair share, per node and GPUs, as prometheus-slurm-exporter names them", async (t) => {
  const au = asMap(parseAccountsAndUsers("physics|alice|RUNNING|4\nphysics|bob|PENDING|8\nphysics|alice|RUNNING|2\nbio|bob|SUSPENDED|1\nbio|carol|COMPLETING|1\nbroken line\n"));
  t.same(au, {
    'slurm_account_jobs_pending{"account":"physics"}': 1,
    'slurm_account_jobs_running{"account":"physics"}': 2,
    'slurm_account_jobs_suspended{"account":"physics"}': 0,
    'slurm_account_cpus_running{"account":"physics"}': 6,
    'slurm_account_jobs_pending{"account":"bio"}': 0,
    'slurm_account_jobs_running{"account":"bio"}': 0,
    'slurm_account_jobs_suspended{"account":"bio"}': 1,
    'slurm_account_cpus_running{"account":"bio"}': 0,
    'slurm_user_jobs_pending{"user":"alice"}': 0,
    'slurm_user_jobs_running{"user":"alice"}': 2,
    'slurm_user_jobs_suspended{"user":"alice"}': 0,
    'slurm_user_cpus_running{"user":"alice"}': 6,
    'slurm_user_jobs_pending{"user":"bob"}': 1,
    'slurm_user_jobs_running{"user":"bob"}': 0,
    'slurm_user_jobs_suspended{"user":"bob"}': 1,
    'slurm_user_cpus_running{"user":"bob"}': 0,
  });
  t.same(asMap(parseFairshare("root|0.500000\n physics|0.250000\n  bio|\n bio|0.75\n")), {
    'slurm_account_fairshare{"account":"root"}': 0.5,
    'slurm_account_fairshare{"account":"physics"}': 0.25,
    'slurm_account_fairshare{"account":"bio"}': 0.75,
  });
  t.equal(gpuCount("(null)"), 0);
  t.equal(gpuCount("gpu:4"), 4);
  t.equal(gpuCount("gpu:a100:4(S:0-1)"), 4);
  t.equal(gpuCount("gpu:a100:1(IDX:0),gpu:v100:2(IDX:0,2),mps:100"), 3, "index lists with commas, other gres left out");
  const nodes = asMap(
    parseNodes(
      [
        "gpu01|allocated|64/0/0/64|400000|512000|gpu:a100:4(S:0-1)|gpu:a100:4(IDX:0-3)",
        "gpu02|mixed|8/56/0/64|10000|512000|gpu:a100:4(S:0-1)|gpu:a100:1(IDX:2)",
        "gpu02|mixed|8/56/0/64|10000|512000|gpu:a100:4(S:0-1)|gpu:a100:1(IDX:2)",
        "cpu01|idle|0/32/0/32|0|192000|(null)|gpu:0",
      ].join("\n"),
    ),
  );
  t.equal(nodes['slurm_node_cpu_alloc{"node":"gpu02","status":"mixed"}'], 8);
  t.equal(nodes['slurm_node_cpu_idle{"node":"gpu02","status":"mixed"}'], 56);
  t.equal(nodes['slurm_node_cpu_total{"node":"cpu01","status":"idle"}'], 32);
  t.equal(nodes['slurm_node_mem_alloc{"node":"gpu01","status":"allocated"}'], 400000);
  t.equal(nodes['slurm_node_mem_total{"node":"cpu01","status":"idle"}'], 192000);
  t.equal(nodes["slurm_gpus_total"], 8, "a node listed in two partitions counts once");
  t.equal(nodes["slurm_gpus_alloc"], 5);
  t.equal(nodes["slurm_gpus_idle"], 3);
  t.equal(nodes["slurm_gpus_utilization"], 5 / 8);
  t.equal(asMap(parseNodes(""))["slurm_gpus_utilization"], 0, "no GPUs: 0, not NaN");
});

t.test("slurm - per-label families are bounded, whatever squeue prints", async (t) => {
  const many = Array.from({ length: MAX_LABEL_VALUES + 50 }, (_, i) => `acct${i}|user${i}|RUNNING|1`).join("\n");
  const out = parseAccountsAndUsers(many);
  t.equal(out.filter((s) => s.name === "slurm_account_jobs_running").length, MAX_LABEL_VALUES);
  t.equal(out.find((s) => s.name === "banyan_slurm_left_out")?.value, 100, "50 accounts and 50 users left out, and counted");
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string(), fc.string(), fc.constantFrom("RUNNING", "PENDING", "SUSPENDED", "x"), fc.oneof(fc.string(), fc.constantFrom("Infinity", "-4", "1e400", "NaN"))), { maxLength: 50 }), (rows) => {
      const samples = parseAccountsAndUsers(rows.map((r) => r.join("|")).join("\n"));
      return samples.every((s) => Number.isFinite(s.value) && s.value >= 0);
    }),
  );
});

t.test("slurm - every family prometheus-slurm-exporter exports (dashboard 4323's source) is produced", async (t) => {
  const reference = readFileSync(fileURLToPath(new URL("../../fixtures/dashboards/slurm-exporter-vpenso-metric-names.txt", import.meta.url)), "utf8").split("\n").filter(Boolean);
  const produced = new Set(
    [
      ...parseNodeStates(fixture("sinfo-nodes.txt")),
      ...parseCpus(fixture("sinfo-cpus.txt")),
      ...parsePartitionCpus(fixture("sinfo-partitions.txt")),
      ...parseJobs(fixture("squeue.txt")),
      ...parseSdiag(fixture("sdiag.txt")),
      ...parseAccountsAndUsers("physics|alice|RUNNING|4\n"),
      ...parseFairshare("physics|0.5\n"),
      ...parseNodes("n1|idle|0/2/0/2|0|2000|(null)|gpu:0\n"),
    ].map((s) => s.name),
  );
  t.ok(reference.length > 50);
  t.same(reference.filter((n) => !produced.has(n)), [], "none left out");
});
