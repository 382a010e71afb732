import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash, createPublicKey } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import bcrypt from "bcrypt";
import CDP from "chrome-remote-interface";
import { Registry } from "prom-client";
import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { writeTopologyFile } from "../../src/topology/topology-file.js";
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

interface BrowserOptions {
  /** Trust a server certificate by the SHA-256 of its public key (base64), as a site CA would be. */
  readonly spki?: string;
  /** Answer the server's basic-auth challenges with these, as a user typing them into the prompt. */
  readonly auth?: { readonly username: string; readonly password: string };
}

/** Headless Chromium driven over the DevTools protocol: open a URL, read the page's state, take a screenshot. */
async function browser(t: Tap.Test, opts: BrowserOptions = {}): Promise<{ open(url: string): Promise<void>; state(): Promise<PageState | null>; shot(name: string): Promise<string>; challenges: () => number; close(): Promise<void> }> {
  const chromium = requireProgram("chromium");
  const profile = mkdtempSync(join(tmpdir(), "banyan-chromium-"));
  const trust = opts.spki !== undefined ? [`--ignore-certificate-errors-spki-list=${opts.spki}`] : [];
  const proc: ChildProcess = spawn(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", ...trust, `--user-data-dir=${profile}`, `--remote-debugging-port=${DEBUG_PORT}`, "--window-size=1400,1600", "about:blank"], { stdio: "ignore" });
  const killed = new Promise((r) => proc.on("exit", r));
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
  let challenges = 0;
  const auth = opts.auth;
  if (auth !== undefined) {
    // Every request pauses; a 401 with WWW-Authenticate is answered as the browser's prompt would be.
    c.Fetch.on("requestPaused", (e) => void c.Fetch.continueRequest({ requestId: e.requestId }).catch(() => undefined));
    c.Fetch.on("authRequired", (e) => {
      // A user gives up after a few refusals, as Chromium's prompt would be cancelled.
      const response = ++challenges <= 3 ? { response: "ProvideCredentials" as const, ...auth } : { response: "CancelAuth" as const };
      void c.Fetch.continueWithAuth({ requestId: e.requestId, authChallengeResponse: response }).catch(() => undefined);
    });
    await c.Fetch.enable({ handleAuthRequests: true, patterns: [{ urlPattern: "*" }] });
  }
  return {
    challenges: () => challenges,
    async close() {
      await c.close().catch(() => undefined);
      proc.kill("SIGKILL");
      await killed;
    },
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

  // The heatmap's values are the root's: freeze the nodes, then compare with /metrics. A node's
  // periodic keyframe may still bring its exact value (a change under the precision was not sent)
  // up to a keyframe interval later, so the root is read again at each comparison.
  for (const s of cluster.sources.values()) s.frozen = true;
  await sleep(2000);
  const loadAtRoot = async (): Promise<Map<string, number>> => new Map([...(await root.render()).matchAll(/^node_load1\{.*instance="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  t.equal((await loadAtRoot()).size, 64);
  t.ok(
    await eventually(async () => {
      const h = (await page.state())?.heat;
      const load = await loadAtRoot();
      return h?.metric === "load" && load.size === 64 && [...load].every(([n, v]) => h.values[n] === v);
    }, 15_000),
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
  // The epilog ends it: the page now gives its report.
  t.equal(await new Promise((resolve) => spawn(process.execPath, [CLI, "job", "end"], { env: { ...env, SLURM_JOB_EXIT_CODE: "0" } }).on("exit", resolve)), 0, "the epilog ends job 77");
  t.ok(
    await eventually(async () => {
      const j = (await page.state())?.job as { running?: boolean; report?: { duration_s: number; cpu_seconds: number } | null } | undefined;
      return j?.running === false && j.report != null && j.report.duration_s > 0 && j.report.cpu_seconds === 5;
    }, 15_000),
    "after its end the job's page shows its report: duration, and the CPU seconds of its cgroup",
  );
  t.comment(`screenshot: ${await page.shot("live-page-job-ended")}`);
});

t.test("live page - behind the web config's TLS and basic auth, the page and its streams work", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-live-tls-"));
  const key = join(dir, "web.key");
  const crt = join(dir, "web.crt");
  const ssl = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", key, "-out", crt], { encoding: "utf8" });
  t.equal(ssl.status, 0, `openssl made a certificate ${ssl.status === 0 ? "" : ssl.stderr}`);
  const spki = createHash("sha256").update(createPublicKey(readFileSync(key)).export({ type: "spki", format: "der" })).digest("base64");
  const web = join(dir, "web.yml");
  writeFileSync(web, `tls_server_config:\n  cert_file: ${crt}\n  key_file: ${key}\nbasic_auth_users:\n  ops: ${bcrypt.hashSync("s3cret", 10)}\n`);
  const cluster = await startCluster({ nodes: "n[01-08]", roots: "r1", trees: 1, basePort: BASE + 200, series: 40, intervalMs: 500, rootConfig: { web: { configFile: web } } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 8, 30_000), "8 nodes up");
  const url = `https://127.0.0.1:${cluster.roots[0]!.httpPort}/?metric=load`;

  const page = await browser(t, { spki, auth: { username: "ops", password: "s3cret" } });
  await page.open(url);
  t.ok(await eventually(async () => Object.values((await page.state())?.nodes ?? {}).filter((x) => x === "up").length === 8, 15_000), "over HTTPS with the password, the page shows all 8 nodes up");
  t.ok(page.challenges() > 0, "after the root asked for credentials");
  const load = new Map([...(await cluster.roots[0]!.render()).matchAll(/^node_load1\{.*instance="([^"]+)"\} (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]));
  t.ok(await eventually(async () => Object.keys((await page.state())?.heat.values ?? {}).length === load.size, 10_000), "and the heatmap has every node's value (the watch stream passes the same auth)");
  t.ok(await eventually(async () => (await page.state())?.health.nodes_up === 8, 10_000), "and the health stream");
  await page.close();

  const wrong = await browser(t, { spki, auth: { username: "ops", password: "wrong" } });
  await wrong.open(url).catch(() => undefined);
  await sleep(3000);
  t.same((await wrong.state().catch(() => null))?.nodes ?? {}, {}, "a wrong password gets no page");
  t.ok(wrong.challenges() > 0, "the root asked for credentials");
});
