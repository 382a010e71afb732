import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { BANYAN_BIN } from "../fixtures/banyan-cli.js";
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

/**
 * The bench's daemons never read the host's config: a "production" root and agent config (here via
 * $BANYAN_CONFIG, as /etc/banyan/*.yaml would be read by default) with a key no daemon accepts would
 * kill them, and one with a webhook would post the bench's events to the site.
 */
t.test("bench - its daemons read a config of their own, never the host's; one that dies fails the run", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-bench-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const production = join(dir, "production.yaml");
  writeFileSync(production, "# a site's config: the bench must not read it\nnotAKeyOfAnyDaemon: true\n");
  const small = ["bench", "--nodes", "60", "--series", "20", "--duration-s", "2", "--max-real-relays", "6", "--base-port", "23300", "--no-progress"];
  const run = (env: NodeJS.ProcessEnv): SpawnSyncReturns<string> => spawnSync(process.execPath, [BANYAN_BIN, ...small], { encoding: "utf8", env, timeout: 180_000 });
  const ok = run({ ...process.env, BANYAN_CONFIG: production });
  t.equal(ok.status, 0, `the run succeeds beside a config it would die on (${ok.stderr.trim().split("\n").slice(-2).join(" ")})`);
  t.match(ok.stdout, /steady/, "and reports");

  // A root that dies mid-run (4 s after it started): the bench says so and exits non-zero.
  const died = run({ ...process.env, BANYAN_BENCH_ROOT_NODE_ARGS: "--import=data:text/javascript,setTimeout(()=>process.exit(3),4000)" });
  t.not(died.status, 0, "a run whose root died fails");
  t.match(died.stderr, /the bench's own daemons died during the run[^\n]*root root1 exited \(code 3\)/, "naming the daemon and how it ended");
});

t.test("bench - a port of its block in use (a second bench on the host): said with the port and --base-port, exit 2, before anything starts", async (t) => {
  const holder = createServer().listen(23405, "127.0.0.1");
  await once(holder, "listening");
  t.teardown(() => void holder.close());
  const r = spawnSync(process.execPath, [BANYAN_BIN, "bench", "--nodes", "60", "--series", "20", "--duration-s", "2", "--max-real-relays", "6", "--base-port", "23400", "--no-progress"], { encoding: "utf8", timeout: 60_000 });
  t.equal(r.status, 2, r.stderr);
  t.match(r.stderr, /^banyan: port 23405 \(of this run's ports 23400-\d+\) is in use on this host, by another bench perhaps: give --base-port a block that is free$/m);
});
