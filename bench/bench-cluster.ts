import { fork, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../src/agent/index.js";
import { defaultStartSpreadMs } from "../src/series/keyframe-schedule.js";
import { writeTopologyFile } from "../src/topology/topology-file.js";
import type { BenchOptions } from "./bench-options.js";
import type { BenchPlan } from "./bench-plan.js";
import { processStats } from "./process-stats.js";
import { treeTlsSets } from "./bench-tls.js";
import type { Lab } from "./lab/lab-hosts.js";
import type { LabLayout } from "./lab/lab-plan.js";

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
  /** Each relay's parent now ("" while its uplink is not ready). */
  readonly parents: Readonly<Record<string, string>>;
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
  /** Each simulated stream's parent now, by its child slot ("" while it is not ready). */
  readonly parents: Readonly<Record<string, string>>;
}

/** One process of the benchmark cluster with a request/answer channel (forked workers). */
class Worker {
  private readonly waiting = new Set<(err: Error) => void>();

  constructor(readonly proc: ChildProcess) {
    // Ctrl-C reaches the workers from the terminal too: one may be gone when it is asked to stop (ERR_IPC_CHANNEL_CLOSED).
    proc.on("error", () => undefined);
    proc.once("exit", (code) => {
      for (const reject of this.waiting) reject(new Error(`worker exited with ${code}`));
      this.waiting.clear();
    });
  }

  async ask<T>(msg: object, answer: string): Promise<T> {
    if (this.proc.exitCode !== null || !this.proc.connected) throw new Error("worker has exited");
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
  /** The leaf simulators: one, or on emulated hosts one per rack (each on its rack's host). */
  readonly sims: Worker[] = [];
  agent: ChildProcess | null = null;
  /** Nodes whose process runs with its wall clock shifted (libfaketime: "+30s", "-30s"), by name. */
  readonly skew = new Map<string, string>();
  /** Mutual TLS on the tree: the directory of `banyan certs` for the topology (null: plain). */
  tlsDir: string | null = null;
  /** Extra `--set` of each root (the bench's remote_write receiver). */
  rootSets: (root: string) => string[] = () => [];

  constructor(
    readonly plan: BenchPlan,
    readonly o: BenchOptions,
    readonly topologyPath: string,
    /** Where the processes' stderr goes (their warnings stay off the terminal): an open file's fd. */
    private readonly logFd: number | "inherit" = "inherit",
    /** Emulated hosts: every root, real relay and the real agent on its own (see bench/lab). */
    readonly lab: { lab: Lab; layout: LabLayout } | null = null,
  ) {
    writeTopologyFile(topologyPath, plan.topology);
    // The bench's daemons read a config of their own, never the host's /etc/banyan/*.yaml or
    // $BANYAN_CONFIG: a sizing run on a service host must not write to its Prometheus or webhooks.
    this.configPath = join(dirname(topologyPath), "bench-daemon.yaml");
    writeFileSync(this.configPath, "# The bench's own daemons: nothing from /etc/banyan or $BANYAN_CONFIG; every setting on their command line.\n{}\n");
  }

  /** The config file every root and the real agent is started with (empty: their flags say the rest). */
  readonly configPath: string;
  /** Roots and the real agent that exited while the bench did not stop them: the run's figures are not to be trusted. */
  readonly died: string[] = [];
  private readonly stopped = new Set<ChildProcess>();

  /** Notes a daemon's exit the bench did not ask for. */
  private noteExit(p: ChildProcess, what: string): ChildProcess {
    p.once("exit", (code, signal) => {
      if (!this.stopped.has(p)) this.died.push(`${what} exited (${code !== null ? `code ${code}` : signal})`);
    });
    return p;
  }

  /** Starts `node <args>` on `host` of the lab (here, without one). */
  private spawnNode(host: string, args: readonly string[], options: SpawnOptions): ChildProcess {
    // A skewed node's clock: libfaketime shifts the wall clock only (timers and timeouts run on the monotonic one).
    const skew = this.skew.get(host);
    const argv = [...(skew !== undefined ? ["faketime", "-f", skew] : []), process.execPath, ...args];
    const env = skew !== undefined ? { ...process.env, FAKETIME_DONT_FAKE_MONOTONIC: "1" } : process.env;
    if (this.lab === null) return spawn(argv[0]!, argv.slice(1), { ...options, env });
    const [cmd, inLab] = this.lab.lab.command(host, argv);
    return spawn(cmd, inLab, { ...options, env });
  }

  /** A forked worker (IPC), on `host` of the lab (here, without one). */
  private forkWorker(host: string, script: string, execArgv: readonly string[]): Worker {
    const options: SpawnOptions = { stdio: ["ignore", "ignore", this.logFd, "ipc"] };
    return new Worker(this.lab === null ? fork(script, [], { ...options, execArgv: [...execArgv] } as never) : this.spawnNode(host, [...execArgv, script], options));
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
    const sets = [...this.rootSets(name).flatMap((s) => ["--set", s]), ...(this.tlsDir !== null ? treeTlsSets(this.tlsDir, name) : [])];
    const p = this.spawnNode(name, [`--max-old-space-size=${heapMb}`, ...extra, MAIN, "root", "--config", this.configPath, "--topology", this.topologyPath, "--name", name, "--set", `intervalMs=${this.o.intervalMs}`, "--set", "log.level=warn", ...sets], {
      stdio: ["ignore", "ignore", this.logFd, "ipc"],
    });
    return this.noteExit(p, `root ${name}`);
  }

  async restartRoot(k: number): Promise<void> {
    const r = this.roots[k]!;
    this.stopped.add(r.proc);
    r.proc.kill("SIGKILL");
    await once(r.proc, "exit");
    r.proc = this.startRoot(r.name);
    await waitHttp(`http://${r.http}/-/ready`, 30_000);
  }

  async startRelays(): Promise<void> {
    // On emulated hosts every relay is a process on its own host.
    const k = this.lab !== null ? this.plan.relays.length : Math.max(1, this.o.relayProcesses);
    const groups: string[][] = Array.from({ length: k }, () => []);
    if (this.lab !== null) this.plan.relays.forEach((name, i) => groups[i]!.push(name));
    else for (const name of this.plan.relays) groups[this.plan.topology.nodes.get(name)!.tree % k]!.push(name);
    await Promise.all(
      groups.map(async (relays) => {
        if (relays.length === 0) return;
        // BANYAN_BENCH_RELAY_NODE_ARGS: extra Node flags for the relay workers, as for the roots.
        const execArgv = [...process.execArgv, ...nodeArgs("BANYAN_BENCH_RELAY_NODE_ARGS")];
        const w = this.forkWorker(relays[0]!, RELAY_WORKER, execArgv);
        this.relayWorkers.push(w);
        for (const r of relays) this.relaysOf.set(r, w);
        await w.ask(
          { type: "start", topology: this.topologyPath, relays, intervalMs: this.o.intervalMs, series: this.o.series, changeRate: this.o.changeRate, precision: this.o.precision, seed: this.o.seed, tlsDir: this.tlsDir },
          "started",
        );
      }),
    );
  }

  startAgent(): void {
    if (this.plan.realAgent === null) return;
    const args = [...AGENT_NODE_FLAGS, MAIN, "agent", "--config", this.configPath, "--topology", this.topologyPath, "--name", this.plan.realAgent, "--set", `intervalMs=${this.o.intervalMs}`, "--set", "log.level=error", ...(this.tlsDir !== null ? treeTlsSets(this.tlsDir, this.plan.realAgent) : [])];
    this.agent = this.noteExit(this.spawnNode(this.plan.realAgent, args, { stdio: ["ignore", "ignore", this.logFd, "ipc"] }), `the real agent ${this.plan.realAgent}`);
  }

  async startSimulator(): Promise<void> {
    // On emulated hosts each rack's simulated subtrees play from the rack's own host.
    const racks = this.lab === null ? [{ name: "", streams: this.plan.streams }] : this.lab.layout.racks.filter((r) => r.streams.length > 0);
    await Promise.all(racks.map((rack) => this.startRackSimulator(rack.name, rack.streams)));
  }

  private async startRackSimulator(host: string, streams: BenchPlan["streams"]): Promise<void> {
    const sim = this.forkWorker(host, LEAF_SIMULATOR, []);
    this.sims.push(sim);
    await sim.ask(
      {
        type: "start",
        streams,
        templates: { count: 8, series: this.o.series, changeRate: this.o.changeRate, precision: this.o.precision, seed: this.o.seed, period: Math.max(1, Math.round(60_000 / this.o.intervalMs)) },
        intervalMs: this.o.intervalMs,
        startSpreadMs: defaultStartSpreadMs(this.o.nodes, 60_000),
        exclude: this.plan.realAgent,
        tls: this.tlsDir !== null ? { dir: this.tlsDir, topology: this.topologyPath } : null,
      },
      "started",
    );
  }

  async workerStats(): Promise<WorkerStats[]> {
    return Promise.all(
      this.relayWorkers.map(async (w) => {
        const s = await w.ask<{ forwarded: number; children: number; cpu: { user: number; system: number }; rss: number; failoverAtMs: number; failovers: number; parents: Record<string, string> }>({ type: "stats" }, "stats");
        return { forwarded: s.forwarded, children: s.children, cpuUs: s.cpu.user + s.cpu.system, rss: s.rss, failoverAtMs: s.failoverAtMs, failovers: s.failovers, parents: s.parents };
      }),
    );
  }

  /** The simulators' figures, summed (rss: the largest; failoverAtMs: the first). */
  async simStats(): Promise<SimStats> {
    const all = await Promise.all(this.sims.map((sim) => sim.ask<{ frames: number; payloadBytes: number; keyBytes: number; envelopeBytes: number; cpu: { user: number; system: number }; rss: number; failoverAtMs: number; failovers: number; parents: Record<string, string> }>({ type: "stats" }, "stats")));
    const sum = (f: (s: (typeof all)[number]) => number): number => all.reduce((n, s) => n + f(s), 0);
    const firsts = all.map((s) => s.failoverAtMs).filter((t) => t > 0);
    return {
      frames: sum((s) => s.frames),
      payloadBytes: sum((s) => s.payloadBytes),
      keyBytes: sum((s) => s.keyBytes),
      envelopeBytes: sum((s) => s.envelopeBytes),
      cpuUs: sum((s) => s.cpu.user + s.cpu.system),
      rss: Math.max(0, ...all.map((s) => s.rss)),
      failoverAtMs: firsts.length > 0 ? Math.min(...firsts) : 0,
      failovers: sum((s) => s.failovers),
      parents: Object.assign({}, ...all.map((s) => s.parents)) as Record<string, string>,
    };
  }

  /** Where every real relay's and simulated stream's uplink is attached now ("" while it is not ready). */
  async parents(): Promise<Map<string, string>> {
    const [workers, sim] = await Promise.all([this.workerStats(), this.simStats()]);
    return new Map([...workers.flatMap((w) => Object.entries(w.parents)), ...Object.entries(sim.parents)]);
  }

  /** Each root's nodes report (/api/v1/nodes); `skip`: a root not to ask (cut off on purpose). */
  async nodes(skip?: string): Promise<{ node: string; up: boolean; last_seen_ms: number; last_sample_ms: number; series: number }[][]> {
    // A root cut off (emulated hosts) answers nothing: give up on it after 2 s, as on one that failed; `skip` is not asked (an empty answer).
    return Promise.all(this.roots.map((r) => r.name === skip ? [] : fetch(`http://${r.http}/api/v1/nodes`, { signal: AbortSignal.timeout(2000) }).then((x) => x.json() as never).catch(() => [])));
  }

  /** Failovers so far of the real relays and the simulated streams (a worker that was killed no longer counts). */
  async failovers(): Promise<number> {
    return (await this.workerStats()).reduce((n, w) => n + w.failovers, 0) + (await this.simStats()).failovers;
  }

  /** Banyan's own metrics of each root (/api/v1/self), as name{labels} → value. */
  async rootMetrics(): Promise<Map<string, number>[]> {
    return Promise.all(
      this.roots.map(async (r) => {
        const text = await fetch(`http://${r.http}/api/v1/self`, { signal: AbortSignal.timeout(2000) }).then((x) => x.text()).catch(() => "");
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
    await Promise.all(this.sims.map((sim) => sim.ask({ type: "stop" }, "never").catch(() => undefined)));
    for (const p of [this.agent, ...this.roots.map((r) => r.proc)]) if (p !== null) this.stopped.add(p);
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
