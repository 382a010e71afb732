import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { lustreJobstatsCollector, parseJobStats } from "../../../src/agent/collectors/lustre-jobstats.js";
import { SeriesWriter } from "../../../src/agent/collectors/series-writer.js";
import { readJobUsage, type RunningJob } from "../../../src/agent/slurm/job-cgroups.js";
import { jobEndSchema, jobStartSchema } from "../../../src/agent/slurm/control-server.js";
import { hookRequest } from "../../../src/agent/slurm/hook-request.js";
import { JobDiscovery, listJobCgroups, userName } from "../../../src/agent/slurm/job-discovery.js";
import { type SlurmJobFacts, parseScontrolJob, slurmDuration } from "../../../src/agent/slurm/scontrol.js";
import { JobManager } from "../../../src/agent/slurm/job-manager.js";
import { JobRegistry } from "../../../src/agent/slurm/job-registry.js";
import { silentLogger } from "../../../src/core/logger.js";
import { fileTree } from "../../fixtures/file-tree.js";
import { recorder } from "./sources.test.js";

const tree = (files: Record<string, string>): string => fileTree(files, "banyan-cg-");
const job: RunningJob = { jobId: "42", user: "ciuser", uid: "1001", partition: "debug", account: "", startedAtMs: 0 };

t.test("job cgroups - v2 as Slurm lays it out under slurmstepd.scope", async (t) => {
  const root = tree({
    "system.slice/slurmstepd.scope/job_42/cpu.stat": "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 0\n",
    "system.slice/slurmstepd.scope/job_42/memory.current": "104857600\n",
    "system.slice/slurmstepd.scope/job_42/memory.peak": "209715200\n",
    "system.slice/slurmstepd.scope/job_42/memory.max": "1073741824\n",
    "system.slice/slurmstepd.scope/job_42/io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n259:0 rbytes=1000 wbytes=0 rios=1 wios=0\n",
  });
  t.same(readJobUsage(root, job), { cpuSeconds: 2.5, userSeconds: 2, systemSeconds: 0.5, memoryBytes: 104857600, memoryPeakBytes: 209715200, memoryLimitBytes: 1073741824, ioReadBytes: 5096, ioWrittenBytes: 8192, version: 2 }, "memory.max is its allocation");
  const noPeak = tree({ "system.slice/slurmstepd.scope/job_42/cpu.stat": "usage_usec 1\n", "system.slice/slurmstepd.scope/job_42/memory.current": "5\n" });
  t.equal(readJobUsage(noPeak, job)!.memoryPeakBytes, null, "kernels before 5.19 have no memory.peak");
  t.equal(readJobUsage(root, { ...job, jobId: "43" }), null, "a job without a cgroup: nothing, no error");
});

t.test("job cgroups - v1 per controller under slurm/uid_<uid>/job_<id>", async (t) => {
  const base = "slurm/uid_1001/job_42";
  const root = tree({
    [`cpuacct/${base}/cpuacct.usage`]: "3000000000\n",
    [`cpuacct/${base}/cpuacct.stat`]: "user 250\nsystem 50\n",
    [`memory/${base}/memory.usage_in_bytes`]: "52428800\n",
    [`memory/${base}/memory.max_usage_in_bytes`]: "62914560\n",
    [`memory/${base}/memory.limit_in_bytes`]: "9223372036854771712\n",
    [`blkio/${base}/blkio.throttle.io_service_bytes`]: "8:0 Read 4096\n8:0 Write 12288\n8:0 Sync 0\n8:0 Total 16384\nTotal 16384\n",
  });
  t.same(readJobUsage(root, job), { cpuSeconds: 3, userSeconds: 2.5, systemSeconds: 0.5, memoryBytes: 52428800, memoryPeakBytes: 62914560, memoryLimitBytes: null, ioReadBytes: 4096, ioWrittenBytes: 12288, version: 1 }, "v1's no-limit (~2^63) is no allocation");
});

t.test("job cgroups - v1 as Slurm 22.05 names it: slurm_<node>/uid_<uid>/job_<id>", async (t) => {
  const root = tree({ "cpuacct/slurm_vm/uid_1001/job_42/cpuacct.usage": "1000000000\n", "memory/slurm_vm/uid_1001/job_42/memory.usage_in_bytes": "4096\n" });
  t.match(readJobUsage(root, job, "vm"), { cpuSeconds: 1, memoryBytes: 4096, version: 1 });
  t.equal(readJobUsage(root, job, "other"), null);
});

t.test("lustre jobstats - OST and MDT job_stats as per-job bytes and operations", async (t) => {
  const ost = readFileSync(fileURLToPath(new URL("../../fixtures/lustre/obdfilter-job_stats.txt", import.meta.url)), "utf8");
  const mdt = readFileSync(fileURLToPath(new URL("../../fixtures/lustre/mdt-job_stats.txt", import.meta.url)), "utf8");
  const jobs = parseJobStats(ost);
  t.same(jobs.map((j) => j.jobid), ["1234", "dd.0"]);
  t.same(jobs[0]!.ops.get("read_bytes"), [10, 5242880]);
  t.same(jobs[0]!.ops.get("sync"), [3, 0]);
  const root = tree({ "proc/fs/lustre/obdfilter/scratch-OST0000/job_stats": ost, "proc/fs/lustre/mdt/scratch-MDT0000/job_stats": mdt });
  const rec = recorder();
  const w = new SeriesWriter(rec);
  w.begin();
  await lustreJobstatsCollector.collect(w, { proc: join(root, "proc"), sys: join(root, "sys"), rootfs: root });
  w.end();
  t.equal(rec.values.get('lustre_job_read_bytes_total{component="ost",jobid="1234",target="scratch-OST0000"}'), 5242880);
  t.equal(rec.values.get('lustre_job_write_bytes_total{component="ost",jobid="dd.0",target="scratch-OST0000"}'), 268435456);
  t.equal(rec.values.get('lustre_job_stats_total{component="mdt",jobid="1234",operation="open",target="scratch-MDT0000"}'), 42);
  t.equal(rec.values.get('lustre_job_stats_total{component="ost",jobid="1234",operation="write_bytes",target="scratch-OST0000"}'), 2);
});

t.test("job manager - an agent restarted while jobs run takes them back with their tokens; a bad leftover is skipped", async (t) => {
  const runDir = mkdtempSync(join(tmpdir(), "banyan-jm-"));
  const reportDir = join(runDir, "reports");
  const uid = String(process.getuid?.() ?? 0);
  const first = new JobManager(new JobRegistry("n1", "/nonexistent-cgroup"), runDir, reportDir, silentLogger());
  await first.handle({ op: "job-start", jobId: "42", user: "alice", uid, partition: "gpu", account: "proj", gpus: ["0"], atMs: 1_000 });
  const token = readFileSync(join(runDir, "jobs/42.token"), "utf8").trim();
  t.equal((statSync(join(runDir, "jobs/42.json")).mode & 0o777).toString(8), "600", "the registration is root's only");
  t.equal((statSync(join(runDir, "jobs/42.token")).mode & 0o777).toString(8), "400", "the token is its user's only");
  t.equal(readdirSync(join(runDir, "jobs")).filter((f) => !/^42\.(json|token)$/.test(f)).length, 0, "no temp file left behind");
  writeFileSync(join(runDir, "jobs/99.json"), "{not json");
  // A registration whose token file is empty (a crash mid-write by an older agent): never restored.
  writeFileSync(join(runDir, "jobs/98.json"), JSON.stringify({ jobId: "98", user: "mallory", uid, partition: "gpu", account: "proj", startedAtMs: 1 }) + "\n");
  writeFileSync(join(runDir, "jobs/98.token"), "");

  const registry = new JobRegistry("n1", "/nonexistent-cgroup");
  const second = new JobManager(registry, runDir, reportDir, silentLogger());
  t.equal(second.restore(), 1, "one job back, the unreadable one and the one with an empty token skipped");
  t.equal(second.jobOfToken(""), undefined, "an empty token never authenticates");
  t.same(registry.running(), [{ jobId: "42", user: "alice", uid, partition: "gpu", account: "proj", gpus: ["0"], startedAtMs: 1_000 }]);
  t.equal(second.jobOfToken(token), "42", "its push token still works");
  t.same(second.jobLabels("42"), { slurm_job_id: "42", user: "alice", partition: "gpu" });

  const reply = await second.handle({ op: "job-end", jobId: "42", exitCode: "0", atMs: 61_000 });
  const report = JSON.parse(readFileSync(String(reply["report"]), "utf8"));
  t.match(report, { job_id: "42", duration_s: 60, started_at: new Date(1_000).toISOString(), exit_code: "0" }, "dated by the hooks, not by when the agent got to them");
  t.notOk(existsSync(join(runDir, "jobs/42.json")) || existsSync(join(runDir, "jobs/42.token")), "an ended job leaves nothing to take back");
  t.equal(new JobManager(new JobRegistry("n1", "/x"), runDir, reportDir, silentLogger()).restore(), 0);
});

t.test("job discovery - a job with a cgroup but no prolog is registered from what the kernel and Slurm say, never from its environment; one that lost its epilog is ended", async (t) => {
  const env = (vars: Record<string, string>): string => Object.entries(vars).map(([k, v]) => `${k}=${v}\0`).join("");
  const status = (uid: number, gid: number): string => `Name:\tsolver\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t${uid}\t${uid}\t${uid}\t${uid}\nGid:\t${gid}\t${gid}\t${gid}\t${gid}\n`;
  const root = tree({
    // v1, as Slurm 22.05 lays it out.
    "cgroup/cpuacct/slurm_n1/uid_1001/job_7/cpuacct.usage": "2000000000\n",
    "cgroup/cpuacct/slurm_n1/uid_1001/job_7/step_batch/cgroup.procs": "4242\n",
    "cgroup/cpuacct/slurm_n1/uid_1001/job_9/cpuacct.usage": "0\n",
    // v2: job 8's only process is slurmstepd (root's); job 6's user lies in its environment.
    "cgroup/system.slice/slurmstepd.scope/job_8/cpu.stat": "usage_usec 0\n",
    "cgroup/system.slice/slurmstepd.scope/job_8/step_batch/slurm/cgroup.procs": "4343\n",
    "cgroup/system.slice/slurmstepd.scope/job_8/step_batch/user/task_0/cgroup.procs": "",
    "cgroup/system.slice/slurmstepd.scope/job_6/cpu.stat": "usage_usec 0\n",
    "cgroup/system.slice/slurmstepd.scope/job_6/step_batch/user/task_0/cgroup.procs": "4444\n",
    "proc/4242/status": status(1001, 1001),
    "proc/4242/environ": env({ SLURM_JOB_ID: "7", SLURM_JOB_UID: "1001" }),
    "proc/4343/status": status(0, 0),
    "proc/4444/status": status(1002, 1002),
    "proc/4444/environ": env({ SLURM_JOB_ID: "6", SLURM_JOB_UID: "0", SLURM_JOB_USER: "root", SLURM_JOB_PARTITION: "admin", SLURM_JOB_GPUS: "0,1,2,3" }),
    "passwd": "root:x:0:0::/root:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\ncarol:x:1002:1002::/home/carol:/bin/sh\n",
  });
  const cg = join(root, "cgroup");
  t.same(listJobCgroups(cg).map((c) => [c.jobId, c.uid]).sort(), [["6", null], ["7", "1001"], ["8", null], ["9", "1001"]]);
  t.equal(userName("1001", join(root, "passwd")), "bob");
  t.equal(userName("4711", join(root, "passwd")), "4711", "a uid with no name stays a uid");

  const runDir = mkdtempSync(join(tmpdir(), "banyan-disc-"));
  const registry = new JobRegistry("n1", cg);
  const manager = new JobManager(registry, runDir, join(runDir, "reports"), silentLogger());
  // What scontrol says of each job (job 9: Slurm cannot be asked).
  const slurm = async (id: string): Promise<SlurmJobFacts | null> =>
    id === "7" ? { partition: "gpu", account: "proj", gpus: ["2", "3"] } : id === "6" ? { partition: "batch", account: "carol-lab", gpus: [] } : null;
  const discovery = new JobDiscovery(manager, { cgroupRoot: cg, lostEpilogMs: 60_000, proc: join(root, "proc"), passwd: join(root, "passwd"), slurm }, silentLogger());
  await discovery.scan(10_000);
  t.same(registry.running().map((j) => j.jobId).sort(), ["6", "7"], "jobs 6 and 7 at once from their processes; job 9 (no process) waits, job 8 (only slurmstepd) too");
  t.match(registry.running().find((j) => j.jobId === "7"), { user: "bob", uid: "1001", partition: "gpu", account: "proj", gpus: ["2", "3"] });
  t.match(registry.running().find((j) => j.jobId === "6"), { user: "carol", uid: "1002", partition: "batch", account: "carol-lab" }, "the kernel's uid and Slurm's partition, not what the job's environment claims (root, admin, 4 GPUs)");
  t.notOk(registry.running().find((j) => j.jobId === "6")?.gpus, "no GPUs but Slurm's");
  t.ok(existsSync(join(runDir, "jobs/7.token")), "it gets a push token as if its prolog had run");
  await discovery.scan(16_000);
  t.same(registry.running().map((j) => j.jobId).sort(), ["6", "7", "9"], "after 5 s job 9 from the uid of its cgroup path");
  t.match(registry.running().find((j) => j.jobId === "9"), { user: "bob", partition: "" });
  t.notOk(registry.has("8"), "a job with only root's processes and no uid in its path is not registered as root's");

  rmSync(join(cg, "cpuacct/slurm_n1/uid_1001/job_7"), { recursive: true });
  await discovery.scan(20_000);
  t.ok(registry.has("7"), "a missing cgroup is not yet a lost epilog");
  await discovery.scan(81_000);
  t.notOk(registry.has("7"), "gone for a minute with no epilog: ended");
  t.match(JSON.parse(readFileSync(join(runDir, "reports/7.n1.json"), "utf8")), { job_id: "7", exit_code: null, ended_at: new Date(20_000).toISOString() }, "and reported, dated when its cgroup went");
  t.same(await manager.handle({ op: "job-end", jobId: "7", exitCode: "0" }), { report: null }, "the late epilog finds nothing left to do");

  await manager.handle({ op: "job-end", jobId: "9", exitCode: "0" });
  await discovery.scan(90_000);
  t.notOk(registry.has("9"), "a job its epilog ended is not found again while Slurm removes its cgroup");
});

t.test("hook requests - the real prolog and epilog environments (recorded from slurmd in slurm-hook-env/) become valid control requests", async (t) => {
  const envOf = (file: string): Record<string, string> =>
    Object.fromEntries(
      readFileSync(fileURLToPath(new URL(`../../fixtures/slurm/${file}`, import.meta.url)), "utf8")
        .split("\n")
        .filter((l) => l.includes("=") && !l.startsWith("#"))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
  const start = hookRequest("start", envOf("prolog.2.env"), 5)!;
  t.same(start, { request: { op: "job-start", jobId: "2", user: "ciuser", uid: "1001", gid: "1001", partition: "debug", account: "", cpus: 1, nodes: 1, nodelist: "vm", atMs: 5 }, problem: "" }, "SLURM_JOB_CPUS_PER_NODE gives the CPUs allocated, SLURM_JOB_NUM_NODES and SLURM_NODELIST the job's nodes");
  t.ok(jobStartSchema.safeParse(start.request).success, "the control socket takes it");
  const end = hookRequest("end", envOf("epilog.2.env"), 6)!;
  t.same(end.request, { op: "job-end", jobId: "2", exitCode: "0", atMs: 6 });
  t.ok(jobEndSchema.safeParse(end.request).success);
  t.match(hookRequest("start", { ...envOf("prolog.2.env"), SLURM_JOB_GPUS: "0,1" }, 7)!.request, { gpus: ["0", "1"] });
  const odd = hookRequest("start", { ...envOf("prolog.2.env"), SLURM_JOB_GPUS: "gpu:a100:2" }, 7)!;
  t.notOk("gpus" in odd.request, "a GPU list it cannot read leaves the GPUs out…");
  t.match(odd.problem, /SLURM_JOB_GPUS "gpu:a100:2"/, "…and says so");
  t.equal(hookRequest("start", { PATH: "/bin" }, 1), null, "not run by Slurm");
});

t.test("job discovery - scontrol show job -d -o: partition, account and this node's GPUs", async (t) => {
  const line = (extra: string): string =>
    `JobId=77 JobName=wrap UserId=bob(1001) GroupId=bob(1001) MCS_label=N/A Priority=4294901757 Nice=0 Account=proj QOS=normal JobState=RUNNING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 DerivedExitCode=0:0 RunTime=00:00:03 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-11-30T10:00:00 EligibleTime=2026-11-30T10:00:00 Partition=gpu AllocNode:Sid=head:4242 ReqNodeList=(null) ExcNodeList=(null) NodeList=n[1-2] BatchHost=n1 NumNodes=2 NumCPUs=4 NumTasks=2 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=4,mem=2000M,node=2,billing=4,gres/gpu=4 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* JOB_GRES=gpu:a100:4 ${extra} MinCPUsNode=1 MinMemoryNode=1000M MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp Power=\n`;
  const two = line("Nodes=n1 CPU_IDs=0-1 Mem=1000 GRES=gpu:a100:2(IDX:2-3) Nodes=n2 CPU_IDs=0-1 Mem=1000 GRES=gpu:a100:2(IDX:0-1)");
  t.same(parseScontrolJob(two, "77", "n1"), { partition: "gpu", account: "proj", gpus: ["2", "3"], cpus: 2, nodelist: "n[1-2]", nodes: 2 }, "its CPU_IDs count its CPUs; NodeList and NumNodes the job's nodes");
  t.equal(parseScontrolJob(two.replace("TimeLimit=UNLIMITED", "TimeLimit=1-02:03:04"), "77", "n1")?.timeLimitS, 93_784, "TimeLimit days-hours:minutes:seconds");
  for (const [text, s] of [["30", 1800], ["05:00", 300], ["02:00:00", 7200], ["2-12", 216_000], ["UNLIMITED", null], ["Partition_Limit", null], ["", null]] as const) t.equal(slurmDuration(text), s, `Slurm duration "${text}"`);
  t.same(parseScontrolJob(two, "77", "n2")?.gpus, ["0", "1"], "this node's detail");
  t.same(parseScontrolJob(line("Nodes=n1 CPU_IDs=0 Mem=0 GRES="), "77", "n1")?.gpus, [], "no GRES");
  t.same(parseScontrolJob(line("Nodes=n1 CPU_IDs=0 Mem=0 GRES=gpu(IDX:0,2)"), "77", "n1")?.gpus, ["0", "2"], "the older form");
  t.equal(parseScontrolJob(line("").replace("Account=proj", "Account=(null)"), "77", "n1")?.account, "", "no account");
  t.equal(parseScontrolJob(two, "78", "n1"), null, "another job's output is not this job's");
  t.equal(parseScontrolJob("slurm_load_jobs error: Invalid job id specified\n", "77", "n1"), null);
});

t.test("slurm 26.05 - job cgroups named by SLUID (cgroup v2) beside job_<id>: read by a registration's SLUID, found by discovery through Slurm", async (t) => {
  // Both layouts on one node: job 40 under job_40 (CgroupJobIdPaths=yes, or Slurm before 26.05), job 41 and 42 under their SLUIDs.
  const root = tree({
    "cgroup/system.slice/slurmstepd.scope/job_40/cpu.stat": "usage_usec 40000000\n",
    "cgroup/system.slice/slurmstepd.scope/job_40/step_batch/user/task_0/cgroup.procs": "4545\n",
    "cgroup/system.slice/slurmstepd.scope/sEKNKTV3WPV500/cpu.stat": "usage_usec 41000000\n",
    "cgroup/system.slice/slurmstepd.scope/sEKNKTV3WPV500/memory.current": "4096\n",
    "cgroup/system.slice/slurmstepd.scope/sEKNKTV3WPV501/cpu.stat": "usage_usec 42000000\n",
    "cgroup/system.slice/slurmstepd.scope/sEKNKTV3WPV501/step_batch/user/task_0/cgroup.procs": "4545\n",
    "cgroup/system.slice/slurmstepd.scope/system/cpu.stat": "usage_usec 1\n",
    // A SLUID Slurm does not know (a job gone from slurmctld, its directory not yet).
    "cgroup/system.slice/slurmstepd.scope/sEKNKTV3WPV502/cpu.stat": "usage_usec 1\n",
    "proc/4545/status": "Name:\tsolver\nUid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\n",
    "passwd": "bob:x:1001:1001::/home/bob:/bin/sh\n",
  });
  const cg = join(root, "cgroup");
  t.same(
    listJobCgroups(cg).map((c) => [c.jobId, c.sluid ?? null]).sort(),
    [["40", null], [null, "sEKNKTV3WPV500"], [null, "sEKNKTV3WPV501"], [null, "sEKNKTV3WPV502"]].sort(),
    "both layouts; slurmstepd's own directory is not a job",
  );
  t.match(hookRequest("start", { SLURM_JOB_ID: "41", SLURM_JOB_USER: "bob", SLURM_JOB_UID: "1001", SLURM_JOB_SLUID: "sEKNKTV3WPV500" }, 1)!.request, { sluid: "sEKNKTV3WPV500" }, "the prolog's SLURM_JOB_SLUID");
  t.notOk("sluid" in hookRequest("start", { SLURM_JOB_ID: "41", SLURM_JOB_USER: "bob", SLURM_JOB_UID: "1001", SLURM_JOB_SLUID: "../../etc" }, 1)!.request, "not a SLUID: left out");
  const registry = new JobRegistry("n1", cg);
  const runDir = mkdtempSync(join(tmpdir(), "banyan-sluid-"));
  const manager = new JobManager(registry, runDir, join(runDir, "reports"), silentLogger());
  await manager.handle({ op: "job-start", jobId: "41", user: "bob", uid: String(process.getuid!()), partition: "", account: "", sluid: "sEKNKTV3WPV500", atMs: 1 });
  t.equal(registry.sample("41")?.cpuSeconds, 41, "a registered job's usage read from its SLUID directory");
  // Job 42 has no registration: discovery asks Slurm which job has its SLUID.
  const asked: string[] = [];
  const discovery = new JobDiscovery(manager, { cgroupRoot: cg, lostEpilogMs: 60_000, proc: join(root, "proc"), passwd: join(root, "passwd"), slurm: async () => ({ partition: "batch", account: "", gpus: [] }), sluidJob: async (s) => (asked.push(s), s === "sEKNKTV3WPV501" ? "42" : null) }, silentLogger());
  await discovery.scan(10_000);
  t.same(asked, ["sEKNKTV3WPV501", "sEKNKTV3WPV502"], "Slurm asked only for the SLUIDs no registration has");
  t.ok(manager.isRunning("42"), "job 42 registered from its SLUID directory");
  t.equal(registry.sample("42")?.cpuSeconds, 42, "and read from it");
  t.equal(manager.isRunning("40"), true, "job_40 found as before");
  await discovery.scan(11_000);
  t.same(asked, ["sEKNKTV3WPV501", "sEKNKTV3WPV502"], "a SLUID once known is not asked again, nor one Slurm did not know within 30 s");
  await discovery.scan(41_000);
  t.same(asked, ["sEKNKTV3WPV501", "sEKNKTV3WPV502", "sEKNKTV3WPV502"], "the unknown one asked again 30 s later");
});
