import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import { pino } from "pino";
import t from "tap";
import { readUsage, usageRows } from "../../src/tools/usage/usage-report.js";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { writeTopologyFile } from "../../src/topology/topology-file.js";
import { parseAgentConfig } from "../../src/agent/agent-config.js";
import { startAgent } from "../../src/agent/agent-daemon.js";
import { startRoot } from "../../src/root/root-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";

const BASE = 30800;
const PUSH = 30890;
const REPLAY = fileURLToPath(new URL("../fixtures/nvidia-smi-replay", import.meta.url));
const MIB = 1024 * 1024;

t.test("jobs - prolog registers, series and pushes carry the job, epilog reports and everything of the job leaves", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-jobs-"));
  const cg = join(dir, "cgroup");
  for (const id of ["42", "43"]) {
    const d = join(cg, "system.slice/slurmstepd.scope", `job_${id}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "cpu.stat"), `usage_usec ${id}000000\nuser_usec 1000000\nsystem_usec 500000\n`);
    writeFileSync(join(d, "memory.current"), "1048576\n");
    writeFileSync(join(d, "memory.peak"), "2097152\n");
    writeFileSync(join(d, "io.stat"), "8:0 rbytes=4096 wbytes=8192 rios=1 wios=1\n");
  }
  const { topology } = generateTopology({ nodes: ["n1"], roots: ["r1"], trees: 1, local: BASE });
  const topo = join(dir, "t.json");
  writeTopologyFile(topo, topology);
  const jobs = { enabled: true, controlSocket: join(dir, "run/agent.sock"), runDir: join(dir, "run"), reportDir: join(dir, "reports"), cgroupRoot: cg, pushListen: `127.0.0.1:${PUSH}` };
  const yaml = join(dir, "agent.yaml");
  writeFileSync(yaml, `topology: ${topo}\nname: n1\njobs: ${JSON.stringify(jobs)}\n`);
  const log = silentLogger();
  const agentWarnings: string[] = [];
  const agentLog = pino({ level: "warn" }, { write: (line: string) => void agentWarnings.push(line) });
  const root = await startRoot({ topology, topologySource: topo, name: "r1", log, registry: new Registry() }, parseRootConfig({ intervalMs: 250 }));
  // No GPU here: nvidia-smi is played by a script printing a 4 x A100 node's recorded output.
  const agent = await startAgent(
    { topology, topologySource: topo, name: "n1", log: agentLog, registry: new Registry() },
    parseAgentConfig({ source: "synthetic", synthetic: { series: 20 }, intervalMs: 250, jobs, sources: { nvidiaSmi: { enabled: true, path: REPLAY } } }),
  );
  t.teardown(async () => {
    await agent.stop(0);
    await root.stop();
  });
  t.equal((statSync(jobs.controlSocket).mode & 0o777).toString(8), "600", "the control socket is root's only");

  const env = (id: string, extra: Record<string, string> = {}) => ({ ...process.env, SLURM_JOB_ID: id, SLURM_JOB_USER: "alice", SLURM_JOB_UID: "1001", SLURM_JOB_GID: "1001", SLURM_JOB_PARTITION: "debug", BANYAN_CONFIG: yaml, ...extra });
  // Asynchronously: the agent answering lives in this very process, so a spawnSync would block it.
  const job = (op: string, e: NodeJS.ProcessEnv): Promise<{ status: number; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url)), "job", op], { env: e });
      let stderr = "";
      child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
      child.on("exit", (code) => resolve({ status: code ?? -1, stderr }));
    });
  const s1 = await job("start", env("42", { SLURM_JOB_GPUS: "0,1" }));
  t.equal(s1.status, 0, s1.stderr);
  t.equal(s1.stderr, "", "nothing to say when all went well");
  t.equal((await job("start", env("43"))).status, 0);
  const tokenFile = join(jobs.runDir, "jobs/42.token");
  const st = statSync(tokenFile);
  t.same([(st.mode & 0o777).toString(8), st.uid, st.gid], ["400", 1001, 1001], "the token is readable by the job's user only");
  const token = readFileSync(tokenFile, "utf8").trim();

  const page = async (): Promise<string> => root.render();
  t.ok(await eventually(async () => /banyan_job_info\{account="",job="synthetic",job_id="43",partition="debug",user="alice",instance="n1"\} 1/.test(await page()), 10_000), "both jobs' info at the root");
  t.match(await page(), /banyan_job_cpu_seconds_total\{job="synthetic",job_id="42",partition="debug",user="alice",instance="n1"\} 42/, "cgroup v2 accounting with the job's labels");

  const push = (path: string, body: string, headers: Record<string, string> = {}) => fetch(`http://127.0.0.1:${PUSH}${path}`, { method: "PUT", body, headers });
  const token43 = readFileSync(join(jobs.runDir, "jobs/43.token"), "utf8").trim();
  t.equal((await push("/metrics/job/app/slurm_job_id/43", "steps_done_total 7\n", { authorization: `Bearer ${token43}` })).status, 200, "job 43 pushes with its own token");
  const refused = await push("/metrics/job/app/slurm_job_id/42", "iterations_per_second 12\n");
  t.equal(refused.status, 401);
  t.match(await refused.text(), /needs that job's token/);
  t.equal((await push("/metrics/job/app/slurm_job_id/43", "x 1\n", { authorization: `Bearer ${token}` })).status, 403, "job 42's token does not publish as job 43");
  t.equal((await push("/metrics/job/app/rack/%E0%A4%A", "x 1\n")).status, 400, "a malformed percent-escape in the path is a 400, not a 500");
  const bad = await push("/metrics/job/app/slurm_job_id/42", "ok 1\nbroken{ 2\n", { authorization: `Bearer ${token}` });
  t.equal(bad.status, 400);
  t.match(await bad.text(), /line 2:/);
  const basic = Buffer.from(`alice:${token}`).toString("base64");
  t.equal((await push("/metrics/job/app/slurm_job_id/42/phase/solve", "# TYPE iterations_per_second gauge\niterations_per_second 12.5\n", { authorization: `Basic ${basic}` })).status, 200, "Basic auth with the token as password, as Prometheus clients' push helpers send it");
  t.ok(await eventually(async () => /iterations_per_second\{job="app",partition="debug",phase="solve",slurm_job_id="42",user="alice",instance="n1"\} 12.5/.test(await page()), 10_000), "the pushed metric carries the job's labels at the root");

  const agg = await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/42`).then((r) => r.json());
  t.match(agg, { job_id: "42", user: "alice", partition: "debug", running: true, nodes: ["n1"], cpu_seconds: 42, memory_peak_bytes: 2097152, io_read_bytes: 4096 }, "the root's per-job aggregate");
  t.equal((await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/999`)).status, 404);
  t.equal((await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/%E0%A4%A`)).status, 400, "a malformed percent-escape is a 400, not a 500");
  // GPUs 0 and 1 of the recording: 97 % and 95 % busy, 31,522 MiB used each.
  t.ok(await eventually(async () => /banyan_job_gpu_utilization_percent\{job="synthetic",job_id="42",partition="debug",user="alice",instance="n1"\} 96$/m.test(await page()), 10_000), "the job's GPUs' mean utilisation, from SLURM_JOB_GPUS and nvidia-smi");
  t.match(await page(), /banyan_job_gpu_info\{gpu="1",job="synthetic",job_id="42",partition="debug",user="alice",instance="n1"\} 1/, "one info series per GPU of the job, to join DCGM series with");
  t.match(await page(), /DCGM_FI_DEV_GPU_UTIL\{UUID="GPU-6a4c3b0d-2e3f-4071-9b8c-0d1e2f3a4b5c",device="nvidia1",gpu="1",[^}]*\} 95/, "the GPUs' own series under dcgm-exporter's names");
  t.notMatch(await page(), /banyan_job_gpu_\w+\{[^}]*job_id="43"/, "a job without GPUs has no GPU series");
  const gpuAgg = await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/42`).then((r) => r.json());
  t.match(gpuAgg, { gpus: 2, gpu_utilization_percent: 96, gpu_memory_used_bytes: 2 * 31522 * MIB }, "the root's aggregate counts the job's GPUs");
  // The same figures as a watch: the state now, then again when the job's series move (with rates).
  const watched: { cpu_seconds: number; cpu_cores: number | null; job_id: string }[] = [];
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  void fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/42`, { headers: { accept: "text/event-stream" }, signal: ac.signal })
    .then(async (r) => {
      let buf = "";
      for await (const chunk of r.body!) {
        buf += Buffer.from(chunk).toString();
        for (const m of buf.matchAll(/^data: (.*)$/gm)) watched.push(JSON.parse(m[1]!));
        buf = buf.slice(buf.lastIndexOf("\n") + 1);
      }
    })
    .catch(() => undefined);
  t.ok(await eventually(() => watched.length > 0, 5000), "a job watch answers with the job now");
  t.match(watched[0], { job_id: "42", cpu_seconds: 42, cpu_cores: null });
  writeFileSync(join(cg, "system.slice/slurmstepd.scope/job_42/cpu.stat"), "usage_usec 50000000\nuser_usec 1000000\nsystem_usec 500000\n");
  t.ok(await eventually(() => watched.some((w) => w.cpu_seconds === 50 && w.cpu_cores !== null && w.cpu_cores > 0), 10_000), "pushed when its CPU seconds move, with the cores in use");
  ac.abort();
  const inv = (await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/inventory`).then((r) => r.json())) as { nodes: Record<string, unknown>[] };
  t.match(inv.nodes, [{ node: "n1", up: true, tree: 0, parent: "r1", root: "r1", jobs: ["42", "43"], gpus: 4, gpu_model: "NVIDIA A100-SXM4-40GB", cpus: 2 }], "the inventory: place, jobs, hardware");
  // Slurm removes the job's cgroup when it ends, before the epilog runs: meanwhile its last reading
  // stands at the root (it was accounted; it does not turn unknown at its end).
  rmSync(join(cg, "system.slice/slurmstepd.scope/job_42"), { recursive: true });
  await new Promise((r) => setTimeout(r, 3000));
  t.match(await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/42`).then((r) => r.json()), { cpu_seconds: 50, unaccounted_nodes: [] }, "its cgroup gone before the epilog, the job keeps its last figures");
  const e1 = await job("end", env("42", { SLURM_JOB_EXIT_CODE: "0" }));
  t.equal(e1.status, 0, e1.stderr);
  const report = JSON.parse(readFileSync(join(jobs.reportDir, "42.n1.json"), "utf8"));
  t.equal(report.job_id, "42");
  t.equal(report.cpu_seconds, 50, "the CPU seconds at its end (moved to 50 above)");
  t.equal(report.memory_peak_bytes, 2097152);
  t.equal(report.exit_code, "0");
  t.match(report, { gpus: ["0", "1"], gpu_util_avg_percent: 96, gpu_util_peak_percent: 97, gpu_memory_peak_bytes: 2 * 31522 * MIB }, "GPU utilisation in the report");
  t.ok(report.duration_s >= 0 && report.samples >= 1);
  t.notOk(existsSync(tokenFile), "the token is gone with the job");
  t.ok(await eventually(async () => !/job_id="42"/.test(await page()) && !/slurm_job_id="42"/.test(await page()), 10_000), "job 42's series and pushes left the root");
  t.match(await page(), /banyan_job_info\{[^}]*job_id="43"/, "job 43 still runs");
  t.match(await page(), /steps_done_total\{job="app",partition="debug",slurm_job_id="43",user="alice",instance="n1"\} 7/, "and its push outlived job 42's refused, malformed and ended pushes");
  const after = await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/42`).then((r) => r.json());
  t.match(after, { job_id: "42", running: false, cpu_seconds: 50 }, "an ended job keeps its last figures at the root");
  t.equal((await job("end", env("43"))).status, 0);

  // A job whose cgroup is not where the agent looks (a wrong cgroupRoot, no cgroup plugin): its
  // accounting is unknown everywhere, never 0 (a chargeback report would show 0 % efficiency).
  t.equal((await job("start", env("44", { SLURM_JOB_CPUS_PER_NODE: "4" }))).status, 0);
  t.ok(await eventually(async () => /banyan_job_info\{[^}]*job_id="44"/.test(await page()), 10_000), "job 44 runs, without a cgroup");
  t.match(await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/jobs/44`).then((r) => r.json()), { job_id: "44", cpu_seconds: null, io_read_bytes: null, memory_peak_bytes: null, unaccounted_nodes: ["n1"] }, "the root's aggregate says unknown, not 0");
  t.equal((await job("end", env("44"))).status, 0);
  const report44 = JSON.parse(readFileSync(join(jobs.reportDir, "44.n1.json"), "utf8"));
  t.match(report44, { cpu_seconds: null, cpus_allocated: 4 }, "the node's report says unknown");
  t.equal(agentWarnings.filter((l) => l.includes("job 44: no cgroup found")).length, 1, "the agent warned once that job 44 has no cgroup");
  t.ok(await eventually(async () => (await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/events?type=job_end`).then((r) => r.json())).events.some((e: { job: string }) => e.job === "44"), 10_000), "job 44's end event");
  const end44 = (await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/events?type=job_end`).then((r) => r.json())).events.find((e: { job: string }) => e.job === "44");
  t.match(end44.details, { cpu_seconds: null, cpu_efficiency: null, unaccounted_nodes: ["n1"] }, "job_end carries unknown, and which nodes");
  const usage = usageRows([...readUsage([jobs.reportDir]).jobs], "user", 0, Date.now() + 60_000);
  t.match(usage, [{ key: "alice", jobs: 3, unaccounted_jobs: 1 }], "the usage report counts job 44 as unknown, apart from jobs 42 and 43");
  t.equal(usage[0]!.cpu_hours, (50 + 43) / 3600, "and sums only the known jobs' CPU");
});

t.test("jobs - job start and the deployed prolog exit 0 when there is no agent to be had", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-jobs-broken-"));
  const yaml = join(dir, "agent.yaml");
  writeFileSync(yaml, `topology: ${join(dir, "missing.json")}\njobs: {controlSocket: ${join(dir, "none.sock")}, runDir: ${join(dir, "run")}}\n`);
  const env = { ...process.env, SLURM_JOB_ID: "7", SLURM_JOB_USER: "bob", SLURM_JOB_UID: "1002", BANYAN_CONFIG: yaml };
  // Given up by itself after its deadline (it says so below), not killed by this test's 60 s bound:
  // a prolog must never hang Slurm. (No bound on its time here: a loaded machine once took 5 s.)
  const withEnv = spawnSync(process.execPath, [fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url)), "job", "start"], { env, encoding: "utf8", timeout: 60_000 });
  t.equal(withEnv.signal, null, "it ended by itself");
  t.equal(withEnv.status, 0, "exit 0");
  t.match(withEnv.stderr, /did not answer within 1800 ms.*waits in .*spool/, "it says why, and where the request waits");
  t.match(banyan(["job", "end"], undefined).stderr, /no SLURM_JOB_ID/);
  // The deployed prolog with a broken installation: still 0.
  const prolog = fileURLToPath(new URL("../../deploy/slurm/prolog", import.meta.url));
  const logFile = join(dir, "job.log");
  const p = spawnSync(prolog, [], { env: { SLURM_JOB_ID: "8", BANYAN_HOME: "/nonexistent", BANYAN_NODE: process.execPath, BANYAN_LOG: logFile }, encoding: "utf8" });
  t.equal(p.status, 0, "the prolog exits 0 with a broken Banyan");
  t.match(readFileSync(logFile, "utf8"), /Cannot find module|nonexistent/, "and its problem is in the log");
});
