import { readdirSync, readFileSync } from "node:fs";
import t from "tap";
import { eventually } from "../fixtures/cluster.js";
import { startBanyan } from "../fixtures/processes.js";

/** Every process below `pid`, from /proc (children's children included). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after its ')'.
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      parentOf.set(Number(d), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const [c, pp] of parentOf) if (pp === p) (out.push(c), walk(c));
  };
  walk(pid);
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]![0] !== "Z";
  } catch {
    return false;
  }
};

for (const signal of ["SIGTERM", "SIGKILL"] as const) {
  t.test(`bench - ${signal} to a running bench leaves no process of its cluster behind`, async (t) => {
    const bench = startBanyan(["bench", "--nodes", "120", "--series", "20", "--duration-s", "120", "--max-real-relays", "16", "--base-port", "23100", "--no-progress"]);
    t.teardown(() => bench.stop("SIGKILL"));
    t.ok(await eventually(() => /start: \d+ of 120 nodes up/.test(bench.output()), 60_000), "the cluster runs");
    const children = descendants(bench.proc.pid!);
    t.ok(children.length >= 4, `roots, relay workers, simulator and agent run (${children.length} processes)`);
    const code = await bench.stop(signal, 30_000);
    t.equal(code, signal === "SIGTERM" ? 143 : "SIGKILL", `the bench exited (${code})`);
    t.ok(await eventually(() => children.every((p) => !alive(p)), 20_000), `every process it started is gone (left: ${children.filter(alive).join(", ") || "none"})`);
  });
}
