import { Registry } from "prom-client";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { silentLogger } from "../../../../src/core/logger.js";
import { EventLog } from "../../../../src/root/events/event-log.js";
import { JobActions, jobActionsSchema } from "../../../../src/root/fleet/job-actions.js";
import type { JobAggregate, RootJobs } from "../../../../src/root/fleet/root-jobs.js";

const T0 = Date.parse("2026-12-08T00:00:00Z");

function job(id: string, util: number | null, extra: Partial<JobAggregate> = {}): JobAggregate {
  return { job_id: id, user: "u", partition: "gpu", account: "", running: true, nodes: ["n1"], first_seen: new Date(T0 - 7_200_000).toISOString(), last_seen: new Date(T0).toISOString(), cpu_seconds: 1, memory_bytes: 1, memory_peak_bytes: 1, io_read_bytes: 0, io_written_bytes: 0, unaccounted_nodes: [], gpus: 1, gpu_utilization_percent: util, gpu_memory_used_bytes: 0, cpus_allocated: 1, time_limit_s: null, nodes_expected: null, nodelist: null, ...extra };
}

t.test("job actions - idle without a break for the whole window, once a rule, only jobs held whole, dry-run by default", async (t) => {
  let list: JobAggregate[] = [];
  const jobs = { list: () => list, nodesOf: () => [] } as unknown as RootJobs;
  const events = new EventLog("r1", new Registry());
  // A stand-in scontrol: every job runs as u in gpu on n1, but job 9, which Slurm runs on n2.
  const dir = mkdtempSync(join(tmpdir(), "banyan-actions-"));
  const scontrol = join(dir, "scontrol");
  writeFileSync(scontrol, `#!/bin/sh\nid="$4"\nnodes=n1\n[ "$id" = 9 ] && nodes=n2\necho "JobId=$id JobName=x UserId=u(1001) JobState=RUNNING Partition=gpu NodeList=$nodes"\n`, { mode: 0o755 });
  const config = jobActionsSchema.parse({ scontrol, rules: [{ name: "cancel", action: "cancel", forS: 60, minJobAgeS: 0, partitions: ["gpu"] }] });
  t.equal(config.rules[0]!.dryRun, true, "dry-run unless said otherwise");
  const actions = new JobActions(jobs, events, config, silentLogger());
  const scan = (atS: number) => actions.scan(T0 + atS * 1000);
  list = [job("1", 0), job("2", 0, { nodes_expected: 2 }), job("3", 0)];
  await scan(0);
  await scan(30);
  list = [job("1", 0), job("2", 0, { nodes_expected: 2 }), job("3", 40)];
  await scan(45);
  list = [job("1", 0), job("2", 0, { nodes_expected: 2 }), job("3", 0)];
  await scan(61);
  await scan(70);
  const done = events.recent({ type: ["job_action"] }).map((e) => [e.job, e.details?.["result"]]);
  t.same(done, [["1", "dry run"]], "job 1 after 60 s idle, once; job 2 is held here in part (1 of 2 nodes); job 3 was busy at 45 s and starts again");
  await scan(106);
  t.equal(events.recent({ type: ["job_action"] }).length, 1, "job 3: 45 s since its break at 61 s");
  await scan(122);
  t.same(events.recent({ type: ["job_action"] }).map((e) => e.job), ["1", "3"], "job 3 60 s after its break");
  // A node that says it runs job 9, which Slurm runs elsewhere: nothing is done to it.
  list = [job("9", 0)];
  await scan(200);
  await scan(300);
  t.match(events.recent({ type: ["job_action"] }).at(-1), { job: "9", details: { result: "refused: n1 reported the job, and Slurm does not run it there" } });
  t.throws(() => jobActionsSchema.parse({ rules: [{ name: "c", action: "cancel", forS: 1 }] }), /a cancel action must name the partitions/, "a cancel without partitions is refused");
});
