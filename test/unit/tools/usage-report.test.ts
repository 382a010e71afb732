import { mkdtempSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import t from "tap";
import { readUsage, usageRows } from "../../../src/tools/usage/usage-report.js";
import { silentLogger } from "../../../src/core/logger.js";
import { EventLog } from "../../../src/root/events/event-log.js";
import { JobLog } from "../../../src/root/events/job-log.js";

const report = (job: string, node: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  job_id: job,
  node,
  user: "alice",
  partition: "gpu",
  account: "proj",
  started_at: "2026-11-10T10:00:00.000Z",
  ended_at: "2026-11-10T11:00:00.000Z",
  duration_s: 3600,
  cpu_seconds: 3600 * 3,
  cpus_allocated: 4,
  memory_peak_bytes: 8e9,
  memory_allocated_bytes: 16e9,
  io_read_bytes: 1e9,
  io_written_bytes: 2e9,
  gpus: ["0", "1"],
  gpu_util_avg_percent: 50,
  ...extra,
});

t.test("usage report - per-node reports summed per job, the roots' job-end logs for the rest, each job once; efficiency, GPU-hours and the period", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-usage-"));
  mkdirSync(join(dir, "n1"));
  mkdirSync(join(dir, "n2"));
  writeFileSync(join(dir, "n1/7.n1.json"), JSON.stringify(report("7", "n1")));
  writeFileSync(join(dir, "n2/7.n2.json"), JSON.stringify(report("7", "n2", { gpu_util_avg_percent: 100, memory_peak_bytes: 9e9 })));
  writeFileSync(join(dir, "n1/bad.json"), "{not json");
  // Two roots' logs: job 7 (it has reports: they win) and job 8 (only here, seen by both roots: once).
  const line = (job: string, root: string): string => JSON.stringify({ job_id: job, user: "bob", account: "lab", partition: "cpu", root, ended_at: "2026-11-11T00:30:00.000Z", nodes: ["n3", "n4"], duration_s: 1800, cpu_seconds: 900, gpus: 0, memory_peak_bytes: 1e9 });
  writeFileSync(join(dir, "r1.jsonl"), [line("7", "r1"), line("8", "r1"), "garbage"].join("\n") + "\n");
  writeFileSync(join(dir, "r2.jsonl"), line("8", "r2") + "\n");
  const { jobs, skipped } = readUsage([dir]);
  t.equal(jobs.length, 2);
  t.equal(skipped, 2, "the unreadable report and log line are counted");
  const seven = jobs.find((j) => j.job_id === "7")!;
  t.match(seven, { user: "alice", node_hours: 2, cpu_hours: 6, cpu_alloc_hours: 8, gpu_hours: 4, gpu_util_hours: 2 * 50 + 2 * 100, memory_peak_bytes: 9e9 }, "two nodes' reports: one job");
  const byUser = usageRows(jobs, "user", Date.parse("2026-11-01T00:00:00Z"), Date.parse("2026-12-01T00:00:00Z"));
  t.match(byUser, [
    { key: "alice", jobs: 1, node_hours: 2, cpu_hours: 6, cpu_efficiency_percent: 75, gpu_hours: 4, gpu_utilization_percent: 75, memory_peak_of_allocated_percent: 56.25 },
    { key: "bob", jobs: 1, node_hours: 1, cpu_hours: 0.25, cpu_efficiency_percent: null, gpu_utilization_percent: null, memory_peak_of_allocated_percent: null },
  ]);
  t.same(usageRows(jobs, "day", Date.parse("2026-11-11T00:00:00Z"), Date.parse("2026-11-12T00:00:00Z")).map((r) => r.key), ["2026-11-11"], "only what ended in the period");
});

t.test("job-end log - one JSON line per job_end, readable by the report; its size per 10,000 jobs", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-joblog-"));
  const file = join(dir, "jobs.jsonl");
  const events = new EventLog("r1", new Registry());
  const log = new JobLog(file, silentLogger());
  log.start(events);
  for (let k = 0; k < 10_000; k++) {
    events.emit("node_down", { node: "n1", moment: k }); // not a job: not logged
    events.emit("job_end", {
      job: String(100_000 + k),
      labels: { job_id: String(100_000 + k), user: `user${k % 50}`, partition: "gpu", account: "proj" },
      details: { nodes: ["n0001", "n0002"], started_at: "2026-11-10T10:00:00.000Z", duration_s: 3600, cpu_seconds: 7000, memory_peak_bytes: 8e9, io_read_bytes: 1e9, io_written_bytes: 2e9, gpus: 4, gpu_utilization_percent: 61.5 },
      moment: "end",
    });
  }
  await log.stop();
  const size = statSync(file).size;
  t.comment(`job-end log: ${(size / 1e6).toFixed(2)} MB per 10,000 jobs (${Math.round(size / 10_000)} B a job)`);
  t.equal(readFileSync(file, "utf8").trim().split("\n").length, 10_000, "one line per job");
  const { jobs } = readUsage([file]);
  t.equal(jobs.length, 10_000);
  t.match(jobs[0], { user: "user0", node_hours: 2, gpu_hours: 4 });
});

t.test("usage report - unknown accounting (null on a node, or in a root's log) stays unknown: counted apart, never as 0 % efficiency", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-usage-unknown-"));
  writeFileSync(join(dir, "1.n1.json"), JSON.stringify(report("1", "n1")));
  // Job 2: one node found its cgroup, the other did not: the job's use is unknown, not half of it.
  writeFileSync(join(dir, "2.n1.json"), JSON.stringify(report("2", "n1")));
  writeFileSync(join(dir, "2.n2.json"), JSON.stringify(report("2", "n2", { cpu_seconds: null, memory_peak_bytes: null, io_read_bytes: null, io_written_bytes: null })));
  writeFileSync(join(dir, "r1.jsonl"), JSON.stringify({ job_id: "3", user: "alice", ended_at: "2026-11-10T11:00:00.000Z", nodes: ["n5"], duration_s: 3600, cpu_seconds: null, cpus_allocated: 4, gpus: 0, memory_peak_bytes: null, unaccounted_nodes: ["n5"] }) + "\n");
  const { jobs } = readUsage([dir]);
  t.match(Object.fromEntries(jobs.map((j) => [j.job_id, j.cpu_hours])), { "1": 3, "2": null, "3": null });
  const [row] = usageRows(jobs, "user", Date.parse("2026-11-01T00:00:00Z"), Date.parse("2026-12-01T00:00:00Z"));
  t.match(row, { key: "alice", jobs: 3, unaccounted_jobs: 2, cpu_hours: 3, cpu_efficiency_percent: 75, memory_peak_bytes: 8e9, io_read_bytes: 1e9 }, "the known job alone in the sums and the efficiency");
  const none = usageRows(jobs.filter((j) => j.cpu_hours === null), "user", 0, Date.parse("2027-01-01T00:00:00Z"));
  t.match(none, [{ jobs: 2, unaccounted_jobs: 2, cpu_hours: null, cpu_efficiency_percent: null }], "only unknown jobs: no figure, not 0");
});
