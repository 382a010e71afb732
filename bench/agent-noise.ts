import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { once } from "node:events";
import { availableParallelism } from "node:os";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../src/agent/index.js";
import { generateTopology } from "../src/tools/topology/index.js";
import { writeTopologyFile } from "../src/topology/topology-file.js";
import { applyScheduling } from "../src/agent/index.js";
import { waitHttp } from "./bench-cluster.js";
import { processStats } from "./process-stats.js";

/**
 * OS noise the agent adds, as a tightly coupled MPI job would feel it: a fixed-work-quantum loop
 * (bench/fwq-worker.ts) pinned to every core, first beside an idle root only (the baseline), then
 * beside the root and a real `banyan agent` with every collector at 1 s, then (--node-exporter)
 * beside Debian's node_exporter scraped every second instead. For each: the distribution of
 * detours (a quantum's time over the fastest quantum's), p50, p99, p99.9 and max, over every core;
 * and the agent's longest tick (banyan_node_tick_max_seconds: collect and encode, the longest the
 * agent holds a core at once). The root runs on this machine too, in every phase alike.
 *
 *   node dist/bench/agent-noise.js [seconds per phase] [--rounds N] [--root-core K] [--node-exporter] [--set key=value ...]
 *        [--node-flags "..."] [--versus "..."]
 *
 * The agent runs with the Node flags it is installed with (src/agent/node-flags.ts), or those of
 * `--node-flags` ("" for none); `--versus "<flags>"` adds a second agent (node n2) with other flags,
 * measured in the same rounds, so two builds of the agent meet the same drift. Each agent's line
 * also says how many times a second it took a core (its threads' timeslices, from schedstat): the
 * detours it causes, which p99.9 counts, however short each one is. From those and the baseline it
 * prints the most they can move p99.9 (each one a detour past it), and each condition's p99.9
 * against the same round's baseline.
 *
 * The conditions alternate within each of N rounds (default 3), the agent stopped (SIGSTOP) while
 * it is not the one measured, and each condition's rounds are pooled: a VM's own noise drifts by
 * more than the agent adds, and back-to-back phases would measure the drift.
 *
 * `--set cpuAffinity=0` keeps the agent on core 0; `--set nice=19` or `--set schedPolicy=idle` lower it.
 *
 * `--root-core K` pins the root to core K and runs FWQ on the other cores only: on a compute node
 * the root is on another machine, and here its work on the agent's frames (which stops while the
 * agent is stopped) would count as the agent's noise. The bench itself (which scrapes node_exporter,
 * Prometheus' part) moves there too; the agent and node_exporter may run on every core.
 */
const HERE = fileURLToPath(new URL(".", import.meta.url));
const MAIN = join(HERE, "../src/cli/main.js");
const argv = process.argv.slice(2);
const seconds = Number(argv.find((a, i) => /^\d+$/.test(a) && !argv[i - 1]?.startsWith("--")) ?? 60);
const sets = argv.flatMap((a, i) => (argv[i - 1] === "--set" ? ["--set", a] : []));
/** The agent's Node flags: as installed (src/agent/node-flags.ts), unless `--node-flags` names others ("" for none). */
const nodeFlags = argv.includes("--node-flags") ? (argv[argv.indexOf("--node-flags") + 1] ?? "").split(/\s+/).filter((x) => x !== "") : [...AGENT_NODE_FLAGS];
/** `--versus "<flags>"`: a second agent with other Node flags, measured in the same rounds. */
const versus = argv.includes("--versus") ? (argv[argv.indexOf("--versus") + 1] ?? "").split(/\s+/).filter((x) => x !== "") : null;
const rootCore = argv.includes("--root-core") ? Number(argv[argv.indexOf("--root-core") + 1]) : null;
/** The cores FWQ runs on: every one but the root's. */
const cores = Array.from({ length: availableParallelism() }, (_, k) => k).filter((k) => k !== rootCore);
const PORT = 30500;
const NE_PORT = PORT + 40;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Detours {
  /** Detour (µs) → quanta, pooled over the cores; and as [detour, quanta] by detour. */
  hist: Map<number, number>;
  sorted: readonly (readonly [number, number])[];
  spentUs: number;
  workUs: number;
  quanta: number;
  quantumUs: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  /** Share of the cores' time taken by detours. */
  noise: number;
}

/** FWQ on every core at once for `s` seconds; the detours of all cores together. */
async function fwq(dir: string, s: number): Promise<Detours> {
  const runs = cores.map((k) => {
    const out = join(dir, `fwq-${k}.json`);
    const p = spawn("taskset", ["-c", String(k), process.execPath, join(HERE, "fwq-worker.js"), String(s), out], { stdio: "ignore" });
    return once(p, "exit").then(() => JSON.parse(readFileSync(out, "utf8")) as { quanta: number; counts: [number, number][] });
  });
  const results = await Promise.all(runs);
  // Detours from each core's own fastest quantum, pooled.
  const detours = new Map<number, number>();
  let quanta = 0;
  let fastest = Infinity;
  let spentUs = 0;
  let workUs = 0;
  for (const r of results) {
    const min = r.counts[0]![0];
    fastest = Math.min(fastest, min);
    for (const [us, n] of r.counts) {
      detours.set(us - min, (detours.get(us - min) ?? 0) + n);
      spentUs += us * n;
      workUs += min * n;
    }
    quanta += r.quanta;
  }
  return summary(detours, quanta, fastest, spentUs, workUs);
}

/** The detour at quantile `q` of a distribution (its histogram sorted by detour). */
function quantile(d: Detours, q: number): number {
  let seen = 0;
  for (const [us, n] of d.sorted) if ((seen += n) >= q * d.quanta) return us;
  return d.max;
}

function summary(detours: Map<number, number>, quanta: number, fastest: number, spentUs: number, workUs: number): Detours {
  const sorted = [...detours].sort((a, b) => a[0] - b[0]);
  const d: Detours = { hist: detours, sorted, spentUs, workUs, quanta, quantumUs: fastest, p50: 0, p99: 0, p999: 0, max: sorted[sorted.length - 1]![0], noise: (spentUs - workUs) / spentUs };
  return { ...d, p50: quantile(d, 0.5), p99: quantile(d, 0.99), p999: quantile(d, 0.999) };
}

/** Rounds of one condition as one distribution. */
function pool(runs: readonly Detours[]): Detours {
  const hist = new Map<number, number>();
  for (const r of runs) for (const [d, n] of r.hist) hist.set(d, (hist.get(d) ?? 0) + n);
  const sum = (f: (d: Detours) => number): number => runs.reduce((a, d) => a + f(d), 0);
  return summary(hist, sum((d) => d.quanta), Math.min(...runs.map((d) => d.quantumUs)), sum((d) => d.spentUs), sum((d) => d.workUs));
}

const line = (what: string, d: Detours, base?: Detours): string =>
  `${what.padEnd(34)} ${String(d.quanta).padStart(9)} quanta of ${d.quantumUs} µs; detours p50 ${d.p50} µs, p99 ${d.p99} µs, p99.9 ${d.p999} µs${base !== undefined && base.p999 > 0 ? ` (${(((d.p999 - base.p999) / base.p999) * 100).toFixed(0)} % of the baseline's)` : ""}, max ${d.max} µs; noise ${(d.noise * 100).toFixed(3)} % of the cores`;

const pct = (x: number): string => `${x >= 0 ? "+" : ""}${x.toFixed(0)} %`;
const rounds = Number(argv.includes("--rounds") ? argv[argv.indexOf("--rounds") + 1] : 3);
const dir = mkdtempSync(join(tmpdir(), "banyan-noise-"));
const procs: ChildProcess[] = [];
/** Each condition's phases, pooled: [name, detours of each round]. */
const results = new Map<string, Detours[]>();
const record = (what: string, d: Detours): void => void results.set(what, [...(results.get(what) ?? []), d]);
try {
  if (rootCore !== null) {
    const refused = await applyScheduling({ cpuAffinity: String(rootCore), schedPolicy: "other" });
    if (refused.length > 0) throw new Error(refused.join("; "));
  }
  /** On any core, whatever the bench's own affinity (the root's core, with --root-core). */
  const everyCore = (cmd: string, args: string[], stdio: StdioOptions = "ignore"): ChildProcess => spawn("taskset", ["-c", `0-${availableParallelism() - 1}`, cmd, ...args], { stdio });
  /**
   * The agents measured: as installed, and with `--versus` a second one with other Node flags. Each
   * has a root of its own (both on the root's core): under one root the second node would be the
   * first's child and fail over to the root each time the first is stopped.
   */
  const agents = await Promise.all(
    [{ name: "n1", flags: nodeFlags }, ...(versus === null ? [] : [{ name: "n2", flags: versus }])].map(async (a, i) => {
      const port = PORT + 20 * i;
      const topo = join(dir, `${a.name}.json`);
      writeTopologyFile(topo, generateTopology({ nodes: [a.name], roots: [`r${i + 1}`], trees: 1, local: port }).topology);
      const rootArgv = [process.execPath, MAIN, "root", "--config", "/dev/null", "--topology", topo, "--name", `r${i + 1}`, "--set", "log.level=warn"];
      procs.push(rootCore === null ? spawn(rootArgv[0]!, rootArgv.slice(1), { stdio: "ignore" }) : spawn("taskset", ["-c", String(rootCore), ...rootArgv], { stdio: "ignore" }));
      await waitHttp(`http://127.0.0.1:${port + 1}/-/ready`, 20_000);
      const proc = everyCore(process.execPath, [...a.flags, MAIN, "agent", "--config", "/dev/null", "--topology", topo, "--name", a.name, "--set", "log.level=warn", ...sets], ["ignore", "ignore", "pipe"]);
      procs.push(proc);
      let stderr = "";
      proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
      const label = `root + agent (node ${a.flags.join(" ") || "with no flags"}${sets.length > 0 ? `; ${sets.filter((x) => x !== "--set").join(" ")}` : ""})`;
      /** Its timeslices and CPU over its phases (how often and how long it took a core), its longest tick. */
      return { ...a, proc, label, rootHttp: `http://127.0.0.1:${port + 1}`, stderr: () => stderr, slices: 0, cpuS: 0, seconds: 0, longestS: 0 };
    }),
  );
  await sleep(20_000); // started, warmed up, their first keyframes sent
  for (const a of agents) if (a.proc.exitCode !== null) throw new Error(`agent ${a.name} exited (${a.proc.exitCode}): ${a.stderr().slice(0, 500)}`);
  const ne = argv.includes("--node-exporter") ? everyCore("prometheus-node-exporter", [`--web.listen-address=127.0.0.1:${NE_PORT}`, "--no-collector.systemd"]) : null;
  if (ne !== null) {
    procs.push(ne);
    await waitHttp(`http://127.0.0.1:${NE_PORT}/metrics`, 20_000);
  }
  console.log(`FWQ on each of cores ${cores.join(",")}${rootCore === null ? "" : ` (the root alone on core ${rootCore})`}; ${rounds} rounds of ${seconds} s a phase, phases interleaved (the machine's own noise drifts):`);
  // Phases alternate within each round; an agent is stopped (SIGSTOP) while it is not the one measured.
  for (const a of agents) a.proc.kill("SIGSTOP");
  for (let r = 0; r < rounds; r++) {
    record("root only (baseline)", await fwq(dir, seconds));
    // Each round the other agent goes first: the second phase after the baseline read worse whichever agent it was.
    for (const a of r % 2 === 0 ? agents : [...agents].reverse()) {
      a.proc.kill("SIGCONT");
      await sleep(3000);
      const s0 = processStats(a.proc.pid!);
      record(a.label, await fwq(dir, seconds));
      const s1 = processStats(a.proc.pid!);
      a.slices += s1.slices - s0.slices;
      a.cpuS += s1.cpuS - s0.cpuS;
      a.seconds += seconds;
      const page = await fetch(`${a.rootHttp}/metrics`).then((x) => x.text());
      a.longestS = Math.max(a.longestS, Number(new RegExp(`^banyan_node_tick_max_seconds\\{[^}]*instance="${a.name}"[^}]*\\} (\\S+)$`, "m").exec(page)?.[1] ?? 0));
      a.proc.kill("SIGSTOP");
    }
    if (ne !== null) {
      let scraping = true;
      const scraper = (async () => {
        while (scraping) {
          await fetch(`http://127.0.0.1:${NE_PORT}/metrics`, { headers: { "accept-encoding": "gzip" } }).then((x) => x.arrayBuffer());
          await sleep(1000 - (Date.now() % 1000));
        }
      })();
      record("root + node_exporter scraped at 1 s", await fwq(dir, seconds));
      scraping = false;
      await scraper;
    }
  }
  const base = pool(results.get("root only (baseline)")!);
  for (const [what, runs] of results) {
    console.log(line(what, pool(runs), what.startsWith("root only") ? undefined : base));
    console.log(`${"".padEnd(34)} p99.9 by round: ${runs.map((d) => `${d.p999} µs`).join(", ")}`);
  }
  // Per round against that round's baseline: the VM's drift between rounds cancels out.
  const baseRuns = results.get("root only (baseline)")!;
  for (const [what, runs] of results) {
    if (what.startsWith("root only")) continue;
    const change = runs.map((d, r) => ((d.p999 - baseRuns[r]!.p999) / baseRuns[r]!.p999) * 100).sort((x, y) => x - y);
    console.log(`${what}: p99.9 against the same round's baseline: median ${pct(change[Math.floor(change.length / 2)]!)} (rounds from ${pct(change[0]!)} to ${pct(change[change.length - 1]!)})`);
  }
  // Each time the agent takes a core it can detour at most one quantum there (the one it interrupts).
  // At worst every one of those is longer than the baseline's p99.9 and the agent adds nothing else:
  // p99.9 with the agent is then the baseline's quantile 0.999 + (agent's core-takes / quanta).
  const quantaPerS = base.quanta / (rounds * seconds);
  for (const a of agents) {
    const share = a.slices / a.seconds / quantaPerS;
    const bound = quantile(base, Math.min(1, 0.999 + share));
    console.log(`agent ${a.name}: the most its ${(a.slices / a.seconds).toFixed(2)} core-takes a second among ${Math.round(quantaPerS)} quanta a second can move p99.9 (each one a detour past it): to the baseline's quantile ${(100 * Math.min(1, 0.999 + share)).toFixed(3)} %, ${bound} µs, ${pct(((bound - base.p999) / base.p999) * 100)}`);
  }
  for (const a of agents) {
    console.log(`agent ${a.name} (node ${a.flags.join(" ") || "with no flags"}): took a core ${(a.slices / a.seconds).toFixed(2)} times a second, ${((a.cpuS / a.seconds) * 1000).toFixed(2)} ms of CPU a second (all its threads); its longest tick (banyan_node_tick_max_seconds, largest seen) ${(a.longestS * 1000).toFixed(2)} ms`);
  }
} finally {
  for (const p of procs) p.kill("SIGCONT");
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.filter((p) => p.exitCode === null && p.signalCode === null).map((p) => Promise.race([once(p, "exit"), sleep(10_000)])));
  rmSync(dir, { recursive: true, force: true });
}
