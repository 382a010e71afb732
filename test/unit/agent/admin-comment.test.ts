import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { AdminComments, adminComment } from "../../../src/agent/slurm/admin-comment.js";
import { silentLogger } from "../../../src/core/logger.js";

t.test("admin comment - a card as one line, and its write through sacctmgr once the verdict is there", async (t) => {
  const card = { state: "ended", metrics: { score: 46, cpu_efficiency_percent: 89.6, memory_used_percent: null, gpu_utilization_percent: 12.5, idle_gpus: 1, time_used_percent: 3.6, elapsed_s: 11, energy_joules: 5400 }, notes: [{ rule: "idle-gpus" }, { rule: "time-overrequested" }] };
  t.equal(adminComment(card), "banyan:v1 score=46 cpu_eff=89.6 mem_used=- gpu_util=12.5 idle_gpus=1 time_used=3.6 elapsed_s=11 energy_j=5400 notes=idle-gpus,time-overrequested");
  t.equal(adminComment({ ...card, notes: [{ rule: "x\ny" }] }).endsWith("notes=x?y"), true, "nothing but printable ASCII");
  // A stand-in sacctmgr keeps its arguments; the card is running at first, ended at the third ask.
  const dir = mkdtempSync(join(tmpdir(), "banyan-sacctmgr-"));
  const sacctmgr = join(dir, "sacctmgr");
  writeFileSync(sacctmgr, `#!/bin/sh\nprintf '%s\\n' "$@" > ${dir}/args\n`, { mode: 0o755 });
  let asked = 0;
  const comments = new AdminComments(() => ["r1:1"], sacctmgr, 10_000, silentLogger(), async () => (++asked < 3 ? { ...card, state: "running" } : card), 5);
  const keepAlive = setInterval(() => undefined, 1000);
  t.teardown(() => clearInterval(keepAlive));
  t.equal(await comments.write("42"), adminComment(card));
  t.equal(asked, 3, "asked until the card ended");
  t.same(readFileSync(join(dir, "args"), "utf8").trim().split("\n"), ["-i", "update", "job", "where", "jobid=42", "set", `AdminComment=${adminComment(card)}`]);
  const never = new AdminComments(() => ["r1:1"], sacctmgr, 0, silentLogger(), async () => null);
  t.equal(await never.write("43"), null, "no root knows the job: nothing written");
});
