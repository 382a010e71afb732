import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import t from "tap";
import { parseCpuList } from "../../../src/agent/scheduling.js";

t.test("scheduling - CPU lists: ranges and singles, sorted and unique; nonsense refused with the part named", async (t) => {
  t.same(parseCpuList("0"), [0]);
  t.same(parseCpuList("3,0-1, 8"), [0, 1, 3, 8]);
  t.same(parseCpuList("2-2,1-2"), [1, 2]);
  for (const bad of ["", "a", "1-", "3-1", "0-4096", "1,,2"]) t.throws(() => parseCpuList(bad), `"${bad}" refused`);
  t.throws(() => parseCpuList("0,x"), /"x" is not a CPU/);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 20 })), { minLength: 1, maxLength: 8 }), (ranges) => {
      const text = ranges.map(([lo, n]) => (n === 0 ? `${lo}` : `${lo}-${lo + n}`)).join(",");
      const want = new Set(ranges.flatMap(([lo, n]) => Array.from({ length: n + 1 }, (_, k) => lo + k)));
      return JSON.stringify(parseCpuList(text)) === JSON.stringify([...want].sort((a, b) => a - b));
    }),
  );
});

t.test("scheduling - applied to every thread of a process: affinity, nice, policy", { skip: process.platform !== "linux" }, async (t) => {
  // In a child process: the settings are process-wide and must not touch the test runner.
  const mod = fileURLToPath(new URL("../../../dist/src/agent/scheduling.js", import.meta.url));
  const script = `
    const { applyScheduling } = await import(${JSON.stringify(mod)});
    const fs = await import("node:fs");
    const problems = await applyScheduling({ cpuAffinity: "0", nice: 7, schedPolicy: "batch" });
    const threads = fs.readdirSync("/proc/self/task").map((tid) => {
      const stat = fs.readFileSync("/proc/self/task/" + tid + "/stat", "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const status = fs.readFileSync("/proc/self/task/" + tid + "/status", "utf8");
      return { nice: Number(f[16]), policy: Number(f[38]), cpus: /Cpus_allowed_list:\\s+(\\S+)/.exec(status)[1] };
    });
    console.log(JSON.stringify({ problems, threads }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  t.equal(r.status, 0, r.stderr);
  const { problems, threads } = JSON.parse(r.stdout) as { problems: string[]; threads: { nice: number; policy: number; cpus: string }[] };
  t.same(problems, [], "nothing refused");
  t.ok(threads.length > 1, `${threads.length} threads`);
  t.ok(threads.every((x) => x.cpus === "0"), "every thread on CPU 0");
  t.ok(threads.every((x) => x.nice === 7), "every thread at nice 7");
  t.ok(threads.every((x) => x.policy === 3), "every thread SCHED_BATCH");
});
