import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
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
import { eventually } from "../fixtures/cluster.js";

const BASE = 18500;
const REPLAY = fileURLToPath(new URL("../fixtures/nvidia-smi-replay", import.meta.url));
const EXAMPLE = fileURLToPath(new URL("../../examples/idle-gpus.mjs", import.meta.url));
const CLI = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));

t.test("examples/idle-gpus.mjs - a scheduler on the gRPC watch names the job that idles its GPUs, not the busy one", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-idle-"));
  const cg = join(dir, "cgroup");
  for (const id of ["50", "51"]) mkdirSync(join(cg, "system.slice/slurmstepd.scope", `job_${id}`), { recursive: true });
  const { topology } = generateTopology({ nodes: ["g1"], roots: ["r1"], trees: 1, local: BASE });
  const topo = join(dir, "t.json");
  writeTopologyFile(topo, topology);
  const jobs = { enabled: true, controlSocket: join(dir, "run/agent.sock"), runDir: join(dir, "run"), reportDir: join(dir, "reports"), cgroupRoot: cg, pushListen: `127.0.0.1:${BASE + 90}` };
  const yaml = join(dir, "agent.yaml");
  writeFileSync(yaml, `topology: ${topo}\nname: g1\njobs: ${JSON.stringify(jobs)}\n`);
  const log = silentLogger();
  const root = await startRoot({ topology, topologySource: topo, name: "r1", log, registry: new Registry() }, parseRootConfig({ intervalMs: 250, watch: { grpcListen: `127.0.0.1:${BASE + 95}` } }));
  const agent = await startAgent(
    { topology, topologySource: topo, name: "g1", log, registry: new Registry() },
    parseAgentConfig({ source: "synthetic", synthetic: { series: 10 }, intervalMs: 250, jobs, sources: { nvidiaSmi: { enabled: true, path: REPLAY } } }),
  );
  t.teardown(async () => {
    await agent.stop(0);
    await root.stop();
  });
  // Job 50 on GPUs 0 and 1 (97 % and 95 % in the recording), job 51 on GPU 2 (0 %).
  const start = (id: string, gpus: string): Promise<number> =>
    new Promise((resolve) => {
      const env = { ...process.env, SLURM_JOB_ID: id, SLURM_JOB_USER: "bob", SLURM_JOB_UID: "1002", SLURM_JOB_GID: "1002", SLURM_JOB_PARTITION: "gpu", SLURM_JOB_GPUS: gpus, BANYAN_CONFIG: yaml };
      spawn(process.execPath, [CLI, "job", "start"], { env }).on("exit", (code) => resolve(code ?? -1));
    });
  t.equal(await start("50", "0,1"), 0);
  t.equal(await start("51", "2"), 0);
  t.ok(await eventually(async () => /banyan_job_gpu_utilization_percent\{[^}]*job_id="51"/.test(await root.render()), 10_000), "both jobs' GPU utilisation at the root");

  const child = spawn(process.execPath, [EXAMPLE, "--root", `127.0.0.1:${BASE + 95}`, "--below", "10", "--for-s", "1"]);
  t.teardown(() => child.kill());
  let out = "";
  child.stdout.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr.on("data", (b: Buffer) => (out += b.toString()));
  t.ok(await eventually(() => /^idle: job 51 \(user bob\)/m.test(out), 15_000), `the idle job is named (${out.trim()})`);
  t.notMatch(out, /job 50/, "the busy one is not");
});
