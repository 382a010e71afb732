import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Registry } from "prom-client";
import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { writeTopologyFile } from "../../src/topology/topology-file.js";
import { parseAgentConfig } from "../../src/agent/agent-config.js";
import { startAgent } from "../../src/agent/agent-daemon.js";
import { startRoot } from "../../src/root/root-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import type { JobCard } from "../../src/root/fleet/job-card.js";
import { eventually } from "../fixtures/cluster.js";

/**
 * A job on two nodes whose trees end at two roots: each root holds one node of it, and either gives
 * the whole card (it asks the other for its part); at the end the root of the job's first node makes
 * the verdict once. GPUs are the nvidia-smi replay's (GPU 1 busy at 95 %, GPU 2 idle).
 */
const BASE = 31900;
const REPLAY = fileURLToPath(new URL("../fixtures/nvidia-smi-replay", import.meta.url));
const MAIN = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
const GIB = 1024 ** 3;

function control(socket: string, request: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = "";
    s.on("connect", () => s.write(JSON.stringify(request) + "\n"));
    s.on("data", (c) => (buf += c.toString("utf8")));
    s.on("end", () => resolve(JSON.parse(buf) as Record<string, unknown>));
    s.on("error", reject);
  });
}

function cli(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args]);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.on("exit", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

t.test("job report - a job across two roots: one card from either, one verdict at the root of its first node", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-job-report-"));
  const { topology } = generateTopology({ nodes: ["n1", "n2"], roots: ["r1", "r2"], trees: 2, local: BASE });
  const topo = join(dir, "t.json");
  writeTopologyFile(topo, topology);
  const log = silentLogger();
  // Rules with no minimum duration, so a job of seconds gets its notes.
  const rules = [
    { name: "idle-gpus", metric: "idle_gpus", condition: ">", threshold: 0, message: "{value} GPU(s) of job {job} never used" },
    { name: "low-cpu", metric: "cpu_efficiency_percent", condition: "<", threshold: 1e9, message: "CPU efficiency {value} %" },
    { name: "gpu-only-partition", metric: "gpus", condition: ">", threshold: 0, partitions: ["gpu"], message: "never written: the job is in debug" },
  ];
  const rootConfig = parseRootConfig({ intervalMs: 250, jobs: { rules, verdictDelayMs: 300, peerTimeoutMs: 2000, carbonIntensityGramsPerKwh: 400 } });
  // n1's RAPL zones (its CPU packages' energy, shared by the jobs' CPU time).
  const sys = join(dir, "n1", "sys");
  mkdirSync(join(sys, "class/powercap/intel-rapl:0"), { recursive: true });
  writeFileSync(join(sys, "class/powercap/intel-rapl:0/name"), "package-0\n");
  writeFileSync(join(sys, "class/powercap/intel-rapl:0/energy_uj"), "1000000\n");
  const roots = await Promise.all(["r1", "r2"].map((name) => startRoot({ topology, topologySource: topo, name, log, registry: new Registry() }, rootConfig)));
  const agents = [];
  for (const [k, node] of ["n1", "n2"].entries()) {
    // Each node's cgroup: 6 CPU-seconds used of 2 CPUs, memory peak 1 GiB of a 4 GiB limit (n2: 2 of 4).
    const cg = join(dir, node, "cgroup");
    const d = join(cg, "system.slice/slurmstepd.scope/job_77");
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, "cpu.stat"), `usage_usec ${(k + 1) * 3_000_000}\nuser_usec 1000000\nsystem_usec 500000\n`);
    writeFileSync(join(d, "memory.current"), `${GIB}\n`);
    writeFileSync(join(d, "memory.peak"), `${(k + 1) * GIB}\n`);
    writeFileSync(join(d, "memory.max"), `${4 * GIB}\n`);
    writeFileSync(join(d, "io.stat"), "8:0 rbytes=4096 wbytes=8192 rios=1 wios=1\n");
    const jobs = { enabled: true, controlSocket: join(dir, node, "agent.sock"), runDir: join(dir, node, "run"), reportDir: join(dir, node, "reports"), cgroupRoot: cg, pushListen: `127.0.0.1:0`, discoverMs: 0 };
    agents.push({
      node,
      jobs,
      agent: await startAgent(
        { topology, topologySource: topo, name: node, log, registry: new Registry() },
        parseAgentConfig({ source: "synthetic", synthetic: { series: 5 }, intervalMs: 250, jobs, sources: { nvidiaSmi: { enabled: node === "n1", path: REPLAY } }, procfs: { sys: node === "n1" ? sys : join(dir, "none") } }),
      ),
    });
  }
  t.teardown(async () => {
    for (const a of agents) await a.agent.stop(0);
    for (const r of roots) await r.stop();
  });
  const startedMs = Date.now();
  for (const a of agents) {
    const reply = await control(a.jobs.controlSocket, { op: "job-start", jobId: "77", user: "alice", uid: String(process.getuid!()), partition: "debug", account: "proj", cpus: 2, nodes: 2, nodelist: "n[1-2]", timeLimitS: 3600, ...(a.node === "n1" ? { gpus: ["1", "2"] } : {}) });
    t.notOk("error" in reply, JSON.stringify(reply));
  }
  const report = async (root: number, query = ""): Promise<{ status: number; card: JobCard }> => {
    const res = await fetch(`http://127.0.0.1:${roots[root]!.httpPort}/api/v1/jobs/77/report${query}`);
    return { status: res.status, card: (await res.json()) as JobCard };
  };
  // The GPUs' busy seconds grow with each sample: wait for a second of them.
  const whole = await eventually(async () => {
    const { status, card } = await report(1);
    return status === 200 && card.nodes === 2 && card.gpu.count === 2 && (card.gpu.per_gpu.at(-1)?.utilization_percent ?? 0) > 0 && (card.energy.by_source["gpu"] ?? 0) > 0;
  }, 15_000);
  t.ok(whole, "r2 holds n2 only, and its card has both nodes (r1's part asked for)");
  const { card } = await report(1);
  t.match(card, { job_id: "77", user: "alice", account: "proj", partition: "debug", state: "running", ended_at: null, nodes: 2, nodes_expected: 2, nodelist: "n[1-2]", partial: false, roots: ["r1", "r2"], missing_roots: [] });
  t.equal(card.cpu.seconds, 9, "CPU seconds summed over the nodes (3 + 6)");
  t.equal(card.cpu.allocated, 4);
  const elapsed = card.metrics.elapsed_s!;
  t.ok(elapsed >= 0 && elapsed <= (Date.now() - startedMs) / 1000 + 1, `elapsed ${elapsed} s from the nodes' start`);
  t.equal(card.memory.peak_bytes, 2 * GIB, "the largest node's peak");
  t.equal(card.memory.requested_bytes, 4 * GIB);
  t.equal(card.metrics.memory_used_percent, 50, "the node nearest its limit: 2 of 4 GiB");
  t.same(card.gpu.idle, ["n1:2"], "GPU 2 never busy");
  t.equal(card.metrics.idle_gpus, 1);
  t.equal(card.gpu.per_gpu.length, 2);
  t.equal(card.metrics.time_used_percent, null, "no time used while it runs");
  // Energy: the replayed GPUs 1 and 2 draw 298.10 + 54.92 W; n1's RAPL package stood still (0 J to share).
  t.ok(card.energy.by_source["gpu"]! > 0 && card.energy.by_source["gpu"]! <= 353.02 * (elapsed + 2), `GPU energy ${card.energy.by_source["gpu"]} J in ${elapsed} s`);
  t.equal(card.energy.by_source["cpu"], 0, "RAPL measured on n1, nothing moved");
  t.ok(Math.abs(card.energy.co2e_grams! - card.energy.kwh! * 400) <= 0.1, `emissions at 400 g/kWh: ${card.energy.co2e_grams} g of ${card.energy.kwh} kWh`);
  t.same(
    card.notes.map((n) => n.rule),
    ["idle-gpus", "low-cpu"],
    "the rules that hold, in their order; the partition filter keeps the third out",
  );
  t.equal(card.notes[0]!.message, "1 GPU(s) of job 77 never used");
  const local = await report(1, "?local=1");
  t.equal(local.card.nodes, 1, "?local=1: this root's part only");
  t.equal(local.card.partial, true, "…which is partial (2 nodes expected)");

  // The CLI, as a user runs it: the table, and the JSON.
  const table = await cli(["job", "report", "77", "--root", `127.0.0.1:${roots[0]!.httpPort}`]);
  t.equal(table.status, 0, table.stderr);
  t.match(table.stdout, /^Job 77 \(alice, account proj, partition debug\): running, score \d+\/100\n/);
  t.match(table.stdout, /on 2 nodes \(n\[1-2\]\)/);
  t.match(table.stdout, /never used: n1:2/);
  t.match(table.stdout, /! 1 GPU\(s\) of job 77 never used/);
  const asJson = await cli(["job", "report", "77", "--root", `127.0.0.1:${roots[0]!.httpPort}`, "--json"]);
  t.equal((JSON.parse(asJson.stdout) as JobCard).nodes, 2);
  const none = await cli(["job", "report", "78", "--root", `127.0.0.1:${roots[0]!.httpPort}`]);
  t.equal(none.status, 1, "a job no root knows: exit 1");
  t.match(none.stderr, /no card for job 78:\n {2}127\.0\.0\.1:\d+: does not know the job/);
  t.equal((await cli(["job", "report", "x; rm", "--root", "127.0.0.1:1"])).status, 2, "not a job id: exit 2");

  // The end: one verdict, at r1 (the root of n1, the first node of n[1-2]).
  for (const a of agents) await control(a.jobs.controlSocket, { op: "job-end", jobId: "77", exitCode: "0" });
  const verdicts = async (root: number): Promise<{ details: Record<string, unknown>; severity: string; labels: Record<string, string> }[]> =>
    ((await (await fetch(`http://127.0.0.1:${roots[root]!.httpPort}/api/v1/events?type=job_verdict`)).json()) as { events: [] }).events;
  t.ok(await eventually(async () => (await verdicts(0)).length === 1, 15_000), "r1 made the verdict");
  const [v] = await verdicts(0);
  t.match(v, { severity: "warning", labels: { job_id: "77", user: "alice" }, details: { nodes: 2, partial: false, rules: ["idle-gpus", "low-cpu"] } });
  await new Promise((r) => setTimeout(r, 800));
  t.equal((await verdicts(1)).length, 0, "r2 made none");
  const ended = await report(0);
  t.equal(ended.card.state, "ended");
  t.ok(ended.card.metrics.time_used_percent !== null && ended.card.metrics.time_used_percent < 1, "ended: time used of an hour");
  const fromR2 = await report(1);
  t.equal(fromR2.card.nodes, 2, "after the end, r2 still gives the whole card");
});
