import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { openCheckoutToOtherUsers } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startBanyan } from "../fixtures/processes.js";
import { SLURM_USER as USER, slurmHost, startSlurm } from "../fixtures/slurm-cluster.js";

/**
 * Actions on the real Slurm: a job holding GPUs 0 and 1 of the nvidia-smi replay (busy) and one
 * holding GPU 2 (idle). The root's rules mail the idle job's user, say what a dry-run cancel would
 * do, then cancel it for real (scancel); the busy job is left alone, and every action is an event
 * and an audit line.
 */
const BASE = 31500;
const REPLAY = fileURLToPath(new URL("../fixtures/nvidia-smi-replay", import.meta.url));

t.test("job actions - an idle GPU job on the real Slurm: mailed, a dry-run cancel said, then cancelled; a busy one left alone", async (t) => {
  openCheckoutToOtherUsers(t);
  const dir = mkdtempSync(join(tmpdir(), "banyan-actions-"));
  chmodSync(dir, 0o755);
  const { topo, run, defaults } = slurmHost(dir, BASE, { intervalMs: 500, sources: `nvidiaSmi: {enabled: true, path: ${REPLAY}}` });
  const mails = join(dir, "mail");
  mkdirSync(mails);
  const sendmail = join(dir, "sendmail");
  writeFileSync(sendmail, `#!/bin/sh\n{ echo "ARGS: $*"; cat; } > ${mails}/$(date +%s%N).txt\n`, { mode: 0o755 });
  const audit = join(dir, "audit.jsonl");
  const rootYaml = join(dir, "root.yaml");
  writeFileSync(
    rootYaml,
    `intervalMs: 500
jobs:
  actions:
    everyMs: 500
    sendmail: ${sendmail}
    mailDomain: example.org
    auditLog: ${audit}
    rules:
      - {name: idle-gpu-mail, action: notify, below: 1, forS: 2, minJobAgeS: 0, dryRun: false}
      - {name: idle-gpu-cancel-dry, action: cancel, below: 1, forS: 3, minJobAgeS: 0, partitions: [debug]}
      - {name: idle-gpu-cancel-other, action: cancel, below: 1, forS: 3, minJobAgeS: 0, partitions: [gpu], dryRun: false}
      - {name: idle-gpu-cancel-old, action: cancel, below: 1, forS: 3, minJobAgeS: 3600, partitions: [debug], dryRun: false}
      - {name: idle-gpu-cancel, action: cancel, below: 1, forS: 6, minJobAgeS: 0, partitions: [debug], dryRun: false}
`,
  );
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--config", rootYaml]);
  const slurm = await startSlurm(defaults, { gpus: 3 });
  t.teardown(async () => {
    await slurm.stop(join(run, "agent.pid"));
    await root.stop();
    rmSync("/etc/default/banyan", { force: true });
  });
  // The busy job first: it is given GPUs 0 and 1; the idle one then gets GPU 2.
  const busy = slurm.submit("sleep 60", ["-n", "1", "--gres=gpu:2"]);
  t.ok(await eventually(() => /JobState=RUNNING/.test(spawnSync("scontrol", ["show", "job", busy], { encoding: "utf8" }).stdout), 30_000, 250), "the busy job runs");
  const idle = slurm.submit("sleep 60", ["-n", "1", "--gres=gpu:1"]);
  const state = (id: string): string => /JobState=(\w+)/.exec(spawnSync("scontrol", ["show", "job", id], { encoding: "utf8" }).stdout)?.[1] ?? "";
  t.ok(await eventually(() => state(idle) === "CANCELLED", 60_000, 500), `the idle job was cancelled (${state(idle)})`);
  t.equal(state(busy), "RUNNING", "the busy job runs on");
  const events = JSON.parse((await httpText(`http://127.0.0.1:${BASE + 1}/api/v1/events?type=job_action`)).text).events as { job: string; details: { rule: string; dry_run: boolean; result: string; action: string } }[];
  t.same(events.map((e) => [e.job, e.details.rule, e.details.result]), [
    [idle, "idle-gpu-mail", "done"],
    [idle, "idle-gpu-cancel-dry", "dry run"],
    [idle, "idle-gpu-cancel", "done"],
  ], "in order: the mail, the dry run, the cancel; never the rule of another partition or for older jobs, never the busy job");
  const lines = readFileSync(audit, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { rule: string; job_id: string; user: string });
  t.same(lines.map((l) => l.rule), ["idle-gpu-mail", "idle-gpu-cancel-dry", "idle-gpu-cancel"], "each in the audit log");
  t.equal(lines[2]!.user, USER);
  const mail = readdirSync(mails).map((f) => readFileSync(join(mails, f), "utf8"));
  t.equal(mail.length, 1, "one mail");
  t.match(mail[0], new RegExp(`^ARGS: -t -i\\nTo: ${USER}@example\\.org\\nSubject: Slurm job ${idle}: its GPUs are idle`));
  t.match(mail[0], /has had its GPUs idle for \d+ minutes \(utilisation 0 %\)/);
  t.ok(existsSync(audit));
});
