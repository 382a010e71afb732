import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:http";
import t from "tap";
import { AGENT_NODE_FLAGS } from "../../src/agent/node-flags.js";
import { openCheckoutToOtherUsers } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startProcess, startBanyan } from "../fixtures/processes.js";
import { findScontrol, scontrolFacts } from "../../src/agent/slurm/scontrol.js";
import { requireProgram } from "../fixtures/programs.js";
import { HOST, SLURM_USER as USER, sh, slurmHost, startSlurm } from "../fixtures/slurm-cluster.js";

/**
 * A real one-node Slurm (Debian slurm-wlm + munge, cgroup v1 accounting), its Prolog and Epilog
 * pointing at deploy/slurm/*, a Banyan root, and no agent: the prolog starts it.
 */
const BASE = 31200;

t.test("slurm - the prolog starts the agent and registers jobs; their info, cgroup use and pushes reach the root; after the epilog they are gone and reported", async (t) => {
  // Jobs run as their Slurm user and reach the checkout (a mode-700 mktemp -d clone included).
  openCheckoutToOtherUsers(t);
  const dir = mkdtempSync(join(tmpdir(), "banyan-slurm-"));
  // This host is the only node; a root on 127.0.0.1.
  const { topo, run, reports, defaults } = slurmHost(dir, BASE, { intervalMs: 500, sources: "slurm: {enabled: true, intervalMs: 1000}" });
  const slurm = await startSlurm(defaults);
  // A real Alertmanager whose route for this user is where a job's end goes (the seed's job notice to the user).
  const notices: { labels: Record<string, string>; annotations: Record<string, string>; status: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (req.url === "/user") notices.push(...(JSON.parse(body) as { alerts: typeof notices }).alerts);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(BASE + 96, "127.0.0.1", () => r()));
  writeFileSync(
    join(dir, "alertmanager.yml"),
    `route:
  receiver: ops
  group_by: ['alertname', 'job_id']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="BanyanJobEnded"', 'user="${USER}"']
      receiver: user
receivers:
  - name: ops
  - name: user
    webhook_configs:
      - url: http://127.0.0.1:${BASE + 96}/user
`,
  );
  const am = startProcess(requireProgram("prometheus-alertmanager"), [`--config.file=${join(dir, "alertmanager.yml")}`, `--storage.path=${join(dir, "am")}`, `--web.listen-address=127.0.0.1:${BASE + 95}`, "--cluster.listen-address="]);
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--set", "intervalMs=500", "--set", `events.alertmanagers=[{url: "http://127.0.0.1:${BASE + 95}"}]`]);
  t.teardown(async () => {
    await slurm.stop(join(run, "agent.pid"));
    await root.stop();
    await am.stop();
    receiver.close();
    rmSync("/etc/default/banyan", { force: true });
  });

  // Two jobs at once, each pushing its progress with its own token (Basic auth, as client helpers do).
  const pusher = join(dir, "push.mjs");
  writeFileSync(
    pusher,
    `const fs = await import("node:fs");
const file = "${run}/jobs/" + process.env.SLURM_JOB_ID + ".token";
// Written by the prolog, or within a few seconds by the agent when Slurm skipped the prolog.
for (let i = 0; i < 100 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 100));
const token = fs.readFileSync(file, "utf8").trim();
const auth = "Basic " + Buffer.from("me:" + token).toString("base64");
const r = await fetch("http://127.0.0.1:${BASE + 90}/metrics/job/solver/slurm_job_id/" + process.env.SLURM_JOB_ID, { method: "PUT", headers: { authorization: auth }, body: "# TYPE solver_iterations_total counter\\nsolver_iterations_total 1234\\n" });
console.log("push", r.status);\n`,
  );
  sh(`chmod 644 ${pusher} && chmod 755 ${dir}`);
  // 12 s after the push: a job found by discovery pushes a few seconds after the other, and both
  // must still run when the root is looked at, even on a loaded machine.
  const submit = (): string => slurm.submit(`${process.execPath} ${pusher}; sleep 12`, ["-n", "1"]);
  const page = async (): Promise<string> => (await httpText(`http://127.0.0.1:${BASE + 1}/metrics`)).text;
  // Both at once: one scheduling cycle allocates them. Their prologs race to start the agent, and
  // this Slurm (22.05, PrologFlags=Alloc) often runs only one of them: the agent finds the other
  // job in the cgroup tree.
  const jobs = [submit(), submit()];
  const seen = await eventually(async () => {
    const p = await page();
    return jobs.every((j) => p.includes(`job_id="${j}"`) && p.includes(`solver_iterations_total{job="solver",partition="debug",slurm_job_id="${j}"`));
  }, 30_000, 250);
  const hooks = readFileSync(`${dir}/job.log`, "utf8");
  t.comment(`prologs run: ${jobs.filter((j) => hooks.includes(`prolog job ${j}\n`)).length} of 2`);
  if (!t.ok(seen, "both jobs' info and pushed metrics at the root while they run")) t.comment(`${hooks.slice(-2000)}\n${readFileSync(join(run, "agent.log"), "utf8").slice(-3000)}`);
  const agentArgv = readFileSync(`/proc/${readFileSync(join(run, "agent.pid"), "utf8").trim()}/cmdline`, "utf8").split("\0");
  t.same(agentArgv.slice(1, 1 + AGENT_NODE_FLAGS.length), AGENT_NODE_FLAGS, "the prolog started the agent with the agent's node flags");
  // What discovery asks Slurm of a job no prolog registered, from the real scontrol.
  const facts = await scontrolFacts(findScontrol(), HOST)(jobs[0]!);
  t.match(facts, { partition: "debug", gpus: [] }, "scontrol show job -d -o gives the job's partition (discovery's source)");
  const p = await page();
  t.match(p, new RegExp(`banyan_job_info\\{account="[^"]*",job="node",job_id="${jobs[0]}",partition="debug",user="${USER}",instance="${HOST}"\\} 1`));
  t.match(p, new RegExp(`banyan_job_memory_bytes\\{job="node",job_id="${jobs[0]}",partition="debug",user="${USER}",instance="${HOST}"\\} \\d+`), "cgroup v1 accounting of the job");
  t.ok(await eventually(async () => /^slurm_queue_running\{job="node",instance="[^"]+"\} [12]$/m.test(await page()), 10_000, 250), "scheduler metrics (squeue) under prometheus-slurm-exporter's names");
  t.match(await page(), /^slurm_cpus_total\{job="node",instance="[^"]+"\} 2$/m, "sinfo's CPUs");
  t.ok(await eventually(async () => new RegExp(`^slurm_user_jobs_running\\{job="node",user="${USER}",instance="[^"]+"\\} [12]$`, "m").test(await page()), 10_000, 250), "per user (squeue)");
  t.match(await page(), new RegExp(`^slurm_node_cpu_total\\{job="node",node="${HOST}",status="[a-z]+",instance="[^"]+"\\} 2$`, "m"), "per node (sinfo -N -O)");
  t.match(await page(), new RegExp(`^slurm_node_mem_total\\{job="node",node="${HOST}",status="[a-z]+",instance="[^"]+"\\} 2000$`, "m"), "the node's RealMemory, MB");
  t.match(await page(), /^slurm_gpus_total\{job="node",instance="[^"]+"\} 0$/m, "no GPUs in this cluster's gres: 0");
  const agg = JSON.parse((await httpText(`http://127.0.0.1:${BASE + 1}/api/v1/jobs/${jobs[0]}`)).text);
  t.match(agg, { job_id: jobs[0], user: USER, running: true, nodes: [HOST] }, "the root's per-job aggregate");

  const done = await eventually(() => jobs.every((j) => /JobState=COMPLETED/.test(spawnSync("scontrol", ["show", "job", j], { encoding: "utf8" }).stdout)), 40_000, 500);
  t.ok(done, "both jobs completed");
  t.ok(
    await eventually(async () => {
      const now = await page();
      return !jobs.some((j) => now.includes(`job_id="${j}"`));
    }, 15_000, 250),
    "their series and pushes left the root",
  );
  t.ok(await eventually(() => existsSync(reports) && jobs.every((j) => readdirSync(reports).includes(`${j}.${HOST}.json`)), 10_000), "the epilog left a report per job");
  // The root saw both jobs start and end: events with the job's labels and, at the end, its figures.
  const events = async (type: string): Promise<{ job?: string; labels: Record<string, string>; details?: Record<string, unknown> }[]> =>
    (JSON.parse((await httpText(`http://127.0.0.1:${BASE + 1}/api/v1/events?type=${type}`)).text) as { events: { job?: string; labels: Record<string, string>; details?: Record<string, unknown> }[] }).events;
  t.ok(await eventually(async () => (await events("job_end")).filter((e) => jobs.includes(e.job!)).length === 2, 15_000, 500), "a job_end event per job at the root");
  t.match((await events("job_start")).find((e) => e.job === jobs[0]), { labels: { job_id: jobs[0], user: USER, partition: "debug" } }, "job_start with the job's labels");
  t.match((await events("job_end")).find((e) => e.job === jobs[0]), { details: { nodes: [HOST], cpus_allocated: 1 } }, "job_end with its figures, its allocated CPUs among them");
  t.equal(typeof (await events("job_end")).find((e) => e.job === jobs[0])?.details?.["cpu_efficiency"], "number", "and its CPU efficiency");
  t.ok(await eventually(() => jobs.every((j) => notices.some((n) => n.labels["alertname"] === "BanyanJobEnded" && n.labels["job_id"] === j)), 15_000, 250), "each job's end reached the route keyed by its user, through the real Alertmanager");
  t.match(notices.find((n) => n.labels["job_id"] === jobs[0]), { labels: { user: USER, partition: "debug" }, annotations: { summary: new RegExp(`job ${jobs[0]} of ${USER} ended`) } });
  const report = JSON.parse(readFileSync(join(reports, `${jobs[0]}.${HOST}.json`), "utf8"));
  t.match(report, { job_id: jobs[0], user: USER, partition: "debug", exit_code: "0" });
  t.ok(report.duration_s > 5 && report.samples > 0, `duration ${report.duration_s} s, ${report.samples} samples`);

  // A broken Banyan must never drain the node: the prolog exits 0 and the job runs.
  writeFileSync("/etc/default/banyan", `BANYAN_NODE=${process.execPath}\nBANYAN_HOME=/nonexistent\nBANYAN_LOG=${dir}/broken.log\n`);
  const broken = submit();
  t.ok(await eventually(() => /JobState=COMPLETED/.test(spawnSync("scontrol", ["show", "job", broken], { encoding: "utf8" }).stdout), 30_000, 500), "a job runs while Banyan is broken");
  t.notMatch(spawnSync("sinfo", ["-h", "-o", "%t"], { encoding: "utf8" }).stdout, /drain/, "the node is not drained");
});
