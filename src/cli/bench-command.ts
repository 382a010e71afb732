import { writeFileSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import cliProgress from "cli-progress";
import { BENCH_DEFAULTS, LAB_SCENARIOS, type BenchOptions, type LabScenario } from "../../bench/bench-options.js";
import { formatBenchTable, writePlot } from "../../bench/bench-report.js";
import { formatRamp, runRamp } from "../../bench/ramp.js";
import { runBench } from "../../bench/run-bench.js";
import { LAB_STATE_ENV, runOnLab } from "../../bench/lab/lab-run.js";
import { labUnavailable, removeStaleLabs } from "../../bench/lab/lab-hosts.js";
import { BanyanError, Code } from "../core/errors.js";
import { exitOnError, intOption } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";

const num = (min: number, max: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`expected a number from ${min} to ${max}`);
  return n;
};

export function benchCommand(): Command {
  const d = BENCH_DEFAULTS;
  return subcommand("bench")
    .description("simulate a cluster at scale on this machine and report bandwidth, latency, CPU, memory and failover figures")
    .option("--nodes <n>", "simulated compute nodes", intOption(2, 1_000_000), d.nodes)
    .option("--trees <n>", "trees", intOption(1, 64), d.trees)
    .option("--roots <n>", "roots (real `banyan root` processes)", intOption(1, 16), d.roots)
    .option("--series <n>", "series per node", intOption(1, 100_000), d.series)
    .option("--interval-ms <ms>", "sampling interval", intOption(100, 60_000), d.intervalMs)
    .option("--change-rate <r>", "share of series that move per tick", num(0, 1), d.changeRate)
    .option("--precision <p>", "relative precision of gauges", num(0, 1), d.precision)
    .option("--duration-s <s>", "measurement window of the steady scenario", intOption(1, 86_400), d.durationS)
    .option("--relay-processes <k>", "processes hosting the real relays", intOption(1, 64), d.relayProcesses)
    .option("--max-real-relays <n>", "real relays at most (the top levels of each tree); below them nodes are simulated", intOption(0, 100_000), d.maxRealRelays)
    .addOption(
      new Option(
        "--scenario <name>",
        "steady, then optionally the failover of killed relays, a root SIGKILLed and restarted (root-restart; storm: the same with the keyframe storm's figures), or all; with --hosts netns also a relay's host gone silent (blackhole), a rack cut off (partition), a root's host cut off (root-isolated), a root's link capped through the start (thin-uplink), packet loss on every link (lossy), every link longer (latency), two nodes' clocks 30 s ahead and behind (skew)",
      )
        .choices(["steady", "failover", "root-restart", "storm", "all", ...LAB_SCENARIOS])
        .default(d.scenario),
    )
    .addOption(new Option("--hosts <where>", "local: every process on this machine's loopback; netns: each root, real relay and the real agent on an emulated host of its own (network namespaces on a bridge; root only)").choices(["local", "netns"]).default(d.hosts))
    .option("--no-tree-tls", "with --hosts netns: a plain tree (mutual TLS from banyan certs' certificates is on by default there)")
    .option("--fault-s <s>", "how long the fault of a network scenario lasts (lossy: at each level)", intOption(1, 3600), d.faultS)
    .option("--loss <percents>", "the lossy scenario's levels of packet loss, % each way, comma-separated", percentList, d.lossPercents.join(",") as unknown as number[])
    .option("--delay-ms <ms>", "the latency scenario's delay on arrival at every host (each hop one way)", intOption(1, 10_000), d.delayMs)
    .option("--uplink-mbit <n>", "the thin-uplink scenario's cap on the first root's link, Mbit/s each way", intOption(1, 100_000), d.uplinkMbit)
    .option("--cleanup", "remove what emulated-host runs that died left behind (namespaces, routes, hosts files, systemd containers: their overlays and cgroups), then exit")
    .option("--kill-relays <k>", "relays killed in the failover scenario", intOption(1, 1000), d.killRelays)
    .option("--baseline-prometheus", "also run a real Prometheus scraping the roots, then the nodes directly")
    .addOption(new Option("--remote-write <receiver>", "the roots also remote_write to a real receiver: its CPU and memory against a Prometheus scraping every node directly, bytes per sample, catch-up after an outage").choices(["prometheus", "victoriametrics"]))
    .option("--remote-write-outage-s <s>", "how long the receiver is stopped in the --remote-write measurement", intOption(1, 3600), d.remoteWriteOutageS)
    .option("--remote-write-refresh-ms <ms>", "the roots' remoteWrite refreshMs in the --remote-write measurement", intOption(1000, 240_000), d.remoteWriteRefreshMs)
    .option("--seed <x>", "seed of the synthetic data", intOption(0, 2 ** 31), d.seed)
    .option("--base-port <port>", "first port of the block the roots and real relays listen on (moved out of the kernel's ephemeral range when it falls in it)", intOption(1024, 65000), d.basePort)
    .option("--json <file>", "write the result as JSON")
    .option("--plot <file>", "write a plot: .html (self-contained) or .png (needs chromium)")
    .option("--no-progress", "no progress bar")
    .option("--ramp", "grow the cluster from --nodes, doubling, each size a steady run, until steady state no longer holds (a node marked down, or p99 ≥ 1 s); report the largest size that held")
    .option("--ramp-max <n>", "largest size a ramp tries", intOption(2, 1_000_000), 1_000_000)
    .addHelpText(
      "after",
      `
The top levels of every tree run as real relays (real agents: sampler + relay) in --relay-processes
worker processes; below them each subtree is simulated by replaying real encoded frames over one
real gRPC stream per child slot; roots are real \`banyan root\` processes; one leaf is a real
\`banyan agent\` with the procfs source. It measures; it asserts nothing.

Scenarios: steady (bandwidth, latency, CPU, memory, render time; once the start's tail is over:
the roots' CPU no longer falling); failover (--kill-relays relays
killed at once); root-restart and storm (root 1 SIGKILLed and started again: time until whole,
peak latency, keyframe bytes, nodes marked down); all. Every run also reports the start (every node
started in the same tick). Only roots and real relays take ports: one block from --base-port, moved
out of the kernel's ephemeral range (/proc/sys/net/ipv4/ip_local_port_range) when it falls in it.
SIGTERM or Ctrl-C stops every process the bench started; so does the bench dying.

Emulated hosts (--hosts netns, as root): every root, real relay and the real agent runs in a network
namespace of its own with its own 10.x address on one bridge (itself in a namespace), the simulated
subtrees of each rack (a real relay's subtree) on one host of that rack, and the bench itself on a
host "ops": no traffic leaves the machine (no lab namespace has a default route, and a blackhole
route covers the lab's subnet here while it runs). It reports the bytes the switch ports counted
(TCP/IP included) beside Banyan's own count. The tree runs on mutual TLS there, with a certificate
per node from banyan certs (--no-tree-tls: plain). Scenarios there: blackhole (a relay's port down and
its process frozen for --fault-s: how soon its children are fresh elsewhere, and back), partition
(a rack cut off from every other host for --fault-s, then healed), root-isolated (the first root's
host cut off for --fault-s: its trees at the other roots, then back), thin-uplink (the first root's
link capped at --uplink-mbit from before the start in one tick), lossy (--loss % of the packets
dropped each way on every link, --fault-s at each level), latency (--delay-ms on arrival at every
host for --fault-s: iptables NFQUEUE and a small delayer the bench builds with cc and
libnetfilter-queue), skew (the real agent's clock 30 s ahead and the deepest real relay's 30 s
behind from their start, with libfaketime's faketime; read for --fault-s). Everything a run creates is
named bnl-<run id>-* and removed on every way out; --cleanup removes what a killed run left.
Not with --remote-write, --baseline-prometheus or --ramp.

Examples:
  npm run bench
  banyan bench --nodes 5000 --series 500 --duration-s 60 --scenario storm
  banyan bench --nodes 1000 --series 500 --duration-s 30 --ramp --json ramp.json
  banyan bench --nodes 10000 --series 500 --scenario all --baseline-prometheus --json out.json --plot out.html
  banyan bench --nodes 1000 --series 500 --remote-write prometheus
  banyan bench --hosts netns --nodes 500 --series 500 --trees 2 --max-real-relays 14 --scenario blackhole`,
    )
    .action(async (flags: Record<string, unknown>) => {
      try {
        if (flags["cleanup"] === true) {
          const why = labUnavailable();
          if (why !== null) throw new BanyanError(Code.InvalidArgument, `--cleanup: ${why}`);
          const removed = removeStaleLabs();
          process.stdout.write(removed.length > 0 ? `removed what dead runs left: ${removed.join(", ")}\n` : "nothing left by dead runs\n");
          return;
        }
        const o: BenchOptions = {
          ...BENCH_DEFAULTS,
          nodes: flags["nodes"] as number,
          trees: flags["trees"] as number,
          roots: flags["roots"] as number,
          series: flags["series"] as number,
          intervalMs: flags["intervalMs"] as number,
          changeRate: flags["changeRate"] as number,
          precision: flags["precision"] as number,
          durationS: flags["durationS"] as number,
          relayProcesses: flags["relayProcesses"] as number,
          maxRealRelays: flags["maxRealRelays"] as number,
          scenario: flags["scenario"] as BenchOptions["scenario"],
          killRelays: flags["killRelays"] as number,
          hosts: flags["hosts"] as BenchOptions["hosts"],
          treeTls: flags["treeTls"] !== false,
          faultS: flags["faultS"] as number,
          // Commander hands the default over unparsed (shown as "1,5" in --help).
          lossPercents: typeof flags["loss"] === "string" ? percentList(flags["loss"]) : (flags["loss"] as number[]),
          uplinkMbit: flags["uplinkMbit"] as number,
          delayMs: flags["delayMs"] as number,
          baselinePrometheus: flags["baselinePrometheus"] === true,
          remoteWrite: (flags["remoteWrite"] as BenchOptions["remoteWrite"] | undefined) ?? null,
          remoteWriteOutageS: flags["remoteWriteOutageS"] as number,
          remoteWriteRefreshMs: flags["remoteWriteRefreshMs"] as number,
          seed: flags["seed"] as number,
          basePort: flags["basePort"] as number,
          json: (flags["json"] as string | undefined) ?? null,
          plot: (flags["plot"] as string | undefined) ?? null,
          progress: flags["progress"] !== false,
        };
        checkHosts(o, flags["ramp"] === true);
        const tty = process.stdout.isTTY === true && o.progress;
        const bar = tty ? new cliProgress.SingleBar({ format: "{label} [{bar}] {percentage}%", clearOnComplete: true }, cliProgress.Presets.shades_classic) : null;
        let label = "";
        const say = (line: string): void => {
          if (bar) bar.stop();
          process.stdout.write(line + "\n");
          label = "";
        };
        const progress = (l: string, fraction: number): void => {
          if (!bar) return;
          if (l !== label) {
            bar.stop();
            bar.start(100, 0, { label: l.padEnd(8) });
            label = l;
          }
          bar.update(Math.round(fraction * 100), { label: l.padEnd(8) });
        };
        if (o.hosts === "netns" && process.env[LAB_STATE_ENV] === undefined) {
          // This process builds the lab and runs the bench inside it (the same command, on the lab's ops host).
          process.exitCode = await runOnLab(o, say);
          return;
        }
        if (flags["ramp"] === true) {
          const ramp = await runRamp(o, flags["rampMax"] as number, say, progress);
          bar?.stop();
          process.stdout.write("\n" + formatRamp(ramp));
          if (o.json !== null) writeFileSync(o.json, JSON.stringify(ramp, null, 2) + "\n");
          return;
        }
        const result = await runBench(o, say, progress);
        bar?.stop();
        process.stdout.write("\n" + formatBenchTable(result));
        if (o.json !== null) writeFileSync(o.json, JSON.stringify(result, null, 2) + "\n");
        if (o.plot !== null) writePlot(o.plot, result);
      } catch (err) {
        exitOnError(err);
      }
    });
}

/** What needs emulated hosts, and what does not run on them yet: exit 2 with the option named. */
function checkHosts(o: BenchOptions, ramp: boolean): void {
  const bad = (msg: string): never => {
    throw new BanyanError(Code.InvalidArgument, msg);
  };
  if ((LAB_SCENARIOS as readonly string[]).includes(o.scenario) && o.hosts !== "netns") bad(`--scenario ${o.scenario as LabScenario} needs emulated hosts: add --hosts netns (as root)`);
  if (o.hosts !== "netns") return;
  const why = labUnavailable();
  if (why !== null) bad(`--hosts netns: ${why}`);
  if (o.remoteWrite !== null) bad("--hosts netns: not with --remote-write (its receiver is not on a lab host yet)");
  if (o.baselinePrometheus) bad("--hosts netns: not with --baseline-prometheus (its Prometheus is not on a lab host yet)");
  if (ramp) bad("--hosts netns: not with --ramp");
}

/** "1,5" → [1, 5]: percentages from 0 to 100. */
function percentList(v: string): number[] {
  const out = v.split(",").map((x) => Number(x.trim()));
  if (out.length === 0 || out.some((n) => !Number.isFinite(n) || n < 0 || n > 100)) throw new InvalidArgumentError("expected percentages from 0 to 100, comma-separated (e.g. 1,5)");
  return out;
}
