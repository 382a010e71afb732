import { fork, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../src/agent/node-flags.js";
import { defaultStartSpreadMs } from "../src/series/keyframe-schedule.js";
import { writeTopologyFile } from "../topology/topology-file.js";
import type { BenchOptions } from "./bench-options.js";
import type { BenchPlan } from "./bench-plan.js";
import { processStats } from "./process-stats.js";

const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const RELAY_WORKER = fileURLToPath(new URL("./relay-worker.js", import.meta.url));
const LEAF_SIMULATOR = fileURLToPath(new URL("./leaf-simulator.js", import.meta.url));

export interface WorkerStats {
  readonly forwarded: number;
  readonly children: number;
  readonly cpuUs: number;
  readonly rss: number;
  readonly failoverAtMs: number;
  readonly failovers: number;
}

export interface SimStats {
  readonly frames: number;
  readonly payloadBytes: number;
  /** Payload bytes of KEY frames (first keyframes and the ones resyncs asked for). */
  readonly keyBytes: number;
  readonly envelopeBytes: number;
  readonly cpuUs: number;
  readonly rss: number;
  readonly failoverAtMs: number;
  readonly failovers: number;
}

/** One process of the benchmark cluster with a request/answer channel (forked workers). */
class Worker {
  private readonly waiting = new Set<(err: Error) => void>();

  constructor(readonly proc: ChildProcess) {
    proc.once("exit", (code) => {
      for (const reject of this.waiting) reject(new Error(`worker exited with ${code}`));
      this.waiting.clear();
    });
  }

  async ask<T>(msg: object, answer: string): Promise<T> {
    if (this.proc.exitCode !== null) throw new Error("worker has exited");
    return new Promise<T>((resolve, reject) => {
      const onMsg = (m: { type: string }): void => {
        if (m.type === answer) {
          this.proc.off("message", onMsg);
          this.waiting.delete(reject);
          resolve(m as T);
        }
      };
      this.waiting.add(reject);
      this.proc.on("message", onMsg);
      this.proc.send(msg);
    });
  }
}

/** The running benchmark cluster: roots (real `banyan root` processes), relay workers, the simulator, a real agent. */
export class BenchCluster {
  readonly roots: { name: string; http: string; proc: ChildProcess }[] = [];
  readonly relayWorkers: Worker[] = [];
  readonly relaysOf = new Map<string, Worker>();
  sim: Worker | null = null;
  agent: ChildProcess | null = null;
  /** Extra `--set` of each root (the bench's remote_write receiver). */
  rootSets: (root: string) => string[] = () => [];

  constructor(
    readonly plan: BenchPlan,
    readonly o: BenchOptions,
    readonly topologyPath: string,
    /** Where the processes' stderr goes (their warnings stay off the terminal): an open file's fd. */
    private readonly logFd: number | "inherit" = "inherit",
  ) {
    writeTopologyFile(topologyPath, plan.topology);
  }

  async startRoots(): Promise<void> {
    for (const r of this.plan.topology.roots) this.roots.push({ name: r.name, http: r.http, proc: this.startRoot(r.name) });
    for (const r of this.roots) await waitHttp(`http://${r.http}/-/ready`, 30_000);
  }

  startRoot(name: string): ChildProcess {
    // An IPC channel: a root whose bench is gone (even SIGKILLed) stops by itself (see runDaemon).
    // A root holds ~1 KB per series, past V8's default heap at 5M series: give each its share of memory.
    const heapMb = Math.min(32_768, Math.max(2048, Math.floor((totalmem() / 2 ** 20) * 0.6 / this.o.roots)));
    // BANYAN_BENCH_ROOT_NODE_ARGS: extra Node flags for the roots (e.g. --cpu-prof), to profile them under the bench's load.
    const extra = nodeArgs("BANYAN_BENCH_ROOT_NODE_ARGS");
    const sets = this.rootSets(name).flatMap((s) => ["--set", s]);
    const p = spawn(process.execPath, [`--max-old-space-size=${heapMb}`, ...extra, MAIN, "root", "--topology", this.topologyPath, "--name", name, "--set", `intervalMs=${this.o.intervalMs}`, "--set", "log.level=warn", ...sets], {
      stdio: ["ignore", "ignore", this.logFd, "ipc"],
    });
    return p;
  }

  async restartRoot(k: number): Promise<void> {
    const r = this.roots[k]!;
    r.proc.kill("SIGKILL");
    await once(r.proc, "exit");
    r.proc = this.startRoot(r.name);
    await waitHttp(`http://${r.http}/-/ready`, 30_000);
  }

  async startRelays(): Promise<void> {
    const k = Math.max(1, this.o.relayProcesses);
    const groups: string[][] = Array.from({ length: k }, () => []);
    for (const name of this.plan.relays) groups[this.plan.topology.nodes.get(name)!.tree % k]!.push(name);
    await Promise.all(
      groups.map(async (relays) => {
        if (relays.length === 0) return;
        // BANYAN_BENCH_RELAY_NODE_ARGS: extra Node flags for the relay workers, as for the roots.
        const execArgv = [...process.execArgv, ...nodeArgs("BANYAN_BENCH_RELAY_NODE_ARGS")];
        const w = new Worker(fork(RELAY_WORKER, [], { stdio: ["ignore", "ignore", this.logFd, "ipc"], execArgv }));
        this.relayWorkers.push(w);
        for (const r of relays) this.relaysOf.set(r, w);
        await w.ask(
          { type: "start", topology: this.topologyPath, relays, intervalMs: this.o.intervalMs, series: this.o.series, changeRate: this.o.changeRate, precision: this.o.precision, seed: this.o.seed },
          "started",
        );
      }),
    );
  }

  startAgent(): void {
    if (this.plan.realAgent === null) return;
    this.agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, MAIN, "agent", "--topology", this.topologyPath, "--name", this.plan.realAgent, "--set", `intervalMs=${this.o.intervalMs}`, "--set", "log.level=error"], {
      stdio: ["ignore", "ignore", this.logFd, "ipc"],
    });
  }

  async startSimulator(): Promise<void> {
    this.sim = new Worker(fork(LEAF_SIMULATOR, [], { stdio: ["ignore", "ignore", this.logFd, "ipc"] }));
    await this.sim.ask(
      {
        type: "start",
        streams: this.plan.streams,
        templates: { count: 8, series: this.o.series, changeRate: this.o.changeRate, precision: this.o.precision, seed: this.o.seed, period: Math.max(1, Math.round(60_000 / this.o.intervalMs)) },
        intervalMs: this.o.intervalMs,
        startSpreadMs: defaultStartSpreadMs(this.o.nodes, 60_000),
        exclude: this.plan.realAgent,
      },
      "started",
    );
  }

  async workerStats(): Promise<WorkerStats[]> {
    return Promise.all(
      this.relayWorkers.map(async (w) => {
        const s = await w.ask<{ forwarded: number; children: number; cpu: { user: number; system: number }; rss: number; failoverAtMs: number; failovers: number }>({ type: "stats" }, "stats");
        return { forwarded: s.forwarded, children: s.children, cpuUs: s.cpu.user + s.cpu.system, rss: s.rss, failoverAtMs: s.failoverAtMs, failovers: s.failovers };
      }),
    );
  }

  async simStats(): Promise<SimStats> {
    const s = await this.sim!.ask<{ frames: number; payloadBytes: number; keyBytes: number; envelopeBytes: number; cpu: { user: number; system: number }; rss: number; failoverAtMs: number; failovers: number }>({ type: "stats" }, "stats");
    return { frames: s.frames, payloadBytes: s.payloadBytes, keyBytes: s.keyBytes, envelopeBytes: s.envelopeBytes, cpuUs: s.cpu.user + s.cpu.system, rss: s.rss, failoverAtMs: s.failoverAtMs, failovers: s.failovers };
  }

  /** Each root's nodes report (/api/v1/nodes). */
  async nodes(): Promise<{ node: string; up: boolean; last_seen_ms: number; last_sample_ms: number; series: number }[][]> {
    return Promise.all(this.roots.map((r) => fetch(`http://${r.http}/api/v1/nodes`).then((x) => x.json() as never).catch(() => [])));
  }

  /** Failovers so far of the real relays and the simulated streams (a worker that was killed no longer counts). */
  async failovers(): Promise<number> {
    return (await this.workerStats()).reduce((n, w) => n + w.failovers, 0) + (await this.simStats()).failovers;
  }

  /** Banyan's own metrics of each root (/api/v1/self), as name{labels} → value. */
  async rootMetrics(): Promise<Map<string, number>[]> {
    return Promise.all(
      this.roots.map(async (r) => {
        const text = await fetch(`http://${r.http}/api/v1/self`).then((x) => x.text()).catch(() => "");
        const out = new Map<string, number>();
        for (const line of text.split("\n")) {
          if (line === "" || line.startsWith("#")) continue;
          const sp = line.lastIndexOf(" ");
          out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
        }
        return out;
      }),
    );
  }

  rootProcessStats(): { cpuS: number; rssBytes: number }[] {
    return this.roots.map((r) => processStats(r.proc.pid!));
  }

  /**
   * Resolves once the roots' CPU over an interval stops falling (within a fifth of the interval
   * before; at least 2, at most 10 intervals): the start's tail (its keyframes' garbage collected,
   * the last resyncs) runs on for seconds after the last node is up, and is not the steady state.
   */
  async rootsSettled(intervalMs: number): Promise<void> {
    let cpuBefore = Infinity;
    for (let k = 0, last = this.rootProcessStats(); k < 10; k++) {
      await new Promise((r) => setTimeout(r, intervalMs));
      const now = this.rootProcessStats();
      const cpu = now.reduce((s, r, i) => s + r.cpuS - (last[i]?.cpuS ?? 0), 0);
      last = now;
      if (k >= 1 && cpu > 0.8 * cpuBefore) return;
      cpuBefore = cpu;
    }
  }

  async stop(): Promise<void> {
    if (this.sim) await this.sim.ask({ type: "stop" }, "never").catch(() => undefined);
    this.agent?.kill("SIGTERM");
    await Promise.all(this.relayWorkers.map((w) => w.ask({ type: "stop" }, "never").catch(() => undefined)));
    for (const r of this.roots) r.proc.kill("SIGTERM");
    const running = (p: ChildProcess | null): p is ChildProcess => p !== null && p.exitCode === null && p.signalCode === null;
    await Promise.all([...this.roots.map((r) => (running(r.proc) ? once(r.proc, "exit") : null)), running(this.agent) ? once(this.agent, "exit") : null]);
  }
}

/** Node flags from an environment variable, split on spaces. */
function nodeArgs(variable: string): string[] {
  return (process.env[variable] ?? "").split(/\s+/).filter((a) => a !== "");
}

export async function waitHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}
