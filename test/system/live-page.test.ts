import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import CDP from "chrome-remote-interface";
import { Registry } from "prom-client";
import t from "tap";
import { generateTopology } from "../../topology/generate.js";
import { writeTopologyFile } from "../../topology/topology-file.js";
import { parseAgentConfig } from "../../src/agent/agent-config.js";
import { startAgent } from "../../src/agent/agent-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { startRoot } from "../../src/root/root-daemon.js";
import { eventually, sleep, startCluster } from "../fixtures/cluster.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 18800;
const DEBUG_PORT = 18990;
/** Where the screenshots go (a test artifact; docs/live-page.png in the README is one of them). */
const SHOTS = process.env["BANYAN_SCREENSHOTS"] ?? join(tmpdir(), "banyan-live-page");

type PageState = { nodes: Record<string, string>; heat: { metric: string; values: Record<string, number> }; jobs: string[]; job: { id: string; nodes: string[] } | null; use: Record<string, { nodes: number }>; health: { nodes_up?: number } };

/** Headless Chromium driven over the DevTools protocol: open a URL, read the page's state, take a screenshot. */
async function browser(t: Tap.Test): Promise<{ open(url: string): Promise<void>; state(): Promise<PageState | null>; shot(name: string): Promise<string> }> {
  const chromium = requireProgram("chromium");
  const profile = mkdtempSync(join(tmpdir(), "banyan-chromium-"));
  const proc: ChildProcess = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", `--user-data-dir=${profile}`, `--remote-debugging-port=${DEBUG_PORT}`, "--window-size=1400,1600", "about:blank"], { stdio: "ignore" });
  t.teardown(() => proc.kill("SIGKILL"));
  let client: CDP.Client | null = null;
  await eventually(async () => {
    try {
      client = await CDP({ port: DEBUG_PORT });
      return true;
    } catch {
      return false;
    }
  }, 20_000);
  if (client === null) throw new Error("chromium's DevTools port did not answer");
  const c = client as CDP.Client;
  t.teardown(() => c.close());
  await c.Page.enable();
  await c.Runtime.enable();
  return {
    async open(url) {
      await c.Page.navigate({ url });
      await c.Page.loadEventFired();
    },
    async state() {
      const r = await c.Runtime.evaluate({ expression: "document.getElementById('state').textContent", returnByValue: true });
      const text = r.result.value as string;
      return text ? (JSON.parse(text) as PageState) : null;
    },
    async shot(name) {
      mkdirSync(SHOTS, { recursive: true });
      const { data } = await c.Page.captureScreenshot({ format: "png", captureBeyondViewport: true });
      const path = join(SHOTS, `${name}.png`);
      writeFileSync(path, Buffer.from(data, "base64"));
      return path;
    },
  };
}

t.test("live page - headless Chromium shows every node of a 64-node cluster, a killed relay's subtree moving and healing, the heatmap's values as the root's, USE and health", async (t) => {
  const FAST = { ackTimeoutMs: 600, healAfterMs: 3000 };
  const cluster = await startCluster({ nodes: "n[01-64]", roots: "r1", trees: 1, basePort: BASE, series: 120, intervalMs: 500, agentConfig: FAST, rootConfig: { deadAfterMs: 2000, events: { nodeLabels: [{ nodes: "n[01-32]", labels: { partition: "gpu" } }, { nodes: "n[33-64]", labels: { partition: "cpu" } }] } } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 64, 30_000), "64 nodes up");
  const root = cluster.roots[0]!;
  const page = await browser(t);
  await page.open(`http://127.0.0.1:${root.httpPort}/?metric=load`);
  const states = async (): Promise<Record<string, string>> => (await page.state())?.nodes ?? {};
  t.ok(await eventually(async () => Object.values(await states()).filter((s) => s === "up").length === 64, 15_000), "the page shows all 64 nodes up");
  t.comment(`screenshot: ${await page.shot("live-page-64")}`);

  // The heatmap's values are the root's: freeze the nodes, then compare with /metrics.
  for (const s of cluster.sources.values()) s.frozen = true;
  await sleep(2000);
  const metrics = await root.render();
  const load = new Map([...metrics.matchAll(/^node_load1\{.*instance="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  t.equal(load.size, 64);
  t.ok(
    await eventually(async () => {
      const h = (await page.state())?.heat;
      return h?.metric === "load" && [...load].every(([n, v]) => h.values[n] === v);
    }, 10_000),
    "every node's heatmap value is node_load1 at the root",
  );
  const s = (await page.state())!;
  t.match(s.use, { gpu: { nodes: 32 }, cpu: { nodes: 32 } }, "USE rows per partition");
  t.ok(await eventually(async () => (await page.state())?.health.nodes_up === 64, 10_000), "Banyan's health says 64 nodes up");

  // An interior relay dies: it goes down, its children move away (to their grandparent); back, all heal.
  const relay = [...cluster.topology.nodes].find(([, n]) => n.children.length > 0 && n.parent !== "r1")![0];
  const children = cluster.topology.nodes.get(relay)!.children;
  await cluster.kill(relay);
  t.ok(
    await eventually(async () => {
      const st = await states();
      return st[relay] === "down" && children.every((c) => st[c] === "away");
    }, 15_000),
    `${relay} down and its children away from it, on the page`,
  );
  t.comment(`screenshot: ${await page.shot("live-page-relay-down")}`);
  await cluster.restart(relay);
  t.ok(await eventually(async () => Object.values(await states()).every((x) => x === "up"), 30_000), "after it is back and its children healed, all up again");
});

t.test("live page - a job's page shows its nodes and figures", async (t) => {
  const REPLAY = fileURLToPath(new URL("../fixtures/nvidia-smi-replay", import.meta.url));
  const CLI = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), "banyan-live-job-"));
  const cg = join(dir, "cgroup");
  mkdirSync(join(cg, "system.slice/slurmstepd.scope/job_77"), { recursive: true });
  writeFileSync(join(cg, "system.slice/slurmstepd.scope/job_77/cpu.stat"), "usage_usec 5000000\n");
  const { topology } = generateTopology({ nodes: ["g1"], roots: ["r1"], trees: 1, local: BASE + 150 });
  const topo = join(dir, "t.json");
  writeTopologyFile(topo, topology);
  const jobs = { enabled: true, controlSocket: join(dir, "run/agent.sock"), runDir: join(dir, "run"), reportDir: join(dir, "reports"), cgroupRoot: cg, pushListen: `127.0.0.1:${BASE + 170}` };
  const yaml = join(dir, "agent.yaml");
  writeFileSync(yaml, `topology: ${topo}\nname: g1\njobs: ${JSON.stringify(jobs)}\n`);
  const log = silentLogger();
  const root = await startRoot({ topology, topologySource: topo, name: "r1", log, registry: new Registry() }, parseRootConfig({ intervalMs: 250 }));
  const agent = await startAgent({ topology, topologySource: topo, name: "g1", log, registry: new Registry() }, parseAgentConfig({ source: "synthetic", synthetic: { series: 10 }, intervalMs: 250, jobs, sources: { nvidiaSmi: { enabled: true, path: REPLAY } } }));
  t.teardown(async () => {
    await agent.stop(0);
    await root.stop();
  });
  const env = { ...process.env, SLURM_JOB_ID: "77", SLURM_JOB_USER: "carol", SLURM_JOB_UID: "1003", SLURM_JOB_GID: "1003", SLURM_JOB_PARTITION: "gpu", SLURM_JOB_GPUS: "0,1", BANYAN_CONFIG: yaml };
  t.equal(await new Promise((resolve) => spawn(process.execPath, [CLI, "job", "start"], { env }).on("exit", resolve)), 0, "the prolog registers job 77");
  t.ok(await eventually(async () => /banyan_job_info\{[^}]*job_id="77"/.test(await root.render()), 10_000));
  const page = await browser(t);
  await page.open(`http://127.0.0.1:${root.httpPort}/?job=77`);
  t.ok(await eventually(async () => (await page.state())?.job?.nodes?.join() === "g1", 15_000), "the job's page lists its node");
  t.ok(await eventually(async () => (await page.state())?.jobs.includes("77") === true, 10_000), "and the jobs table has it");
  t.comment(`screenshot: ${await page.shot("live-page-job")}`);
});
