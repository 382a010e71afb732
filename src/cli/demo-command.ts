import { mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command, Option } from "commander";
import { generateTopology } from "../tools/topology/generate.js";
import { renderTopology } from "../tools/topology/renderers.js";
import { writeTopologyFile, type Topology } from "../topology/topology-file.js";
import { BanyanError, Code } from "../core/errors.js";
import { createLogger } from "../core/logger.js";
import { parseAgentConfig } from "../agent/agent-config.js";
import { parseRootConfig } from "../root/root-config.js";
import { parseHostPort, routeGrpcLogs } from "../wire/uplink-grpc.js";
import { exitOnError, intOption } from "./cli-errors.js";
import { startAgent } from "../agent/agent-daemon.js";
import { startRoot, type RootDaemon } from "../root/root-daemon.js";
import type { NodeDaemon } from "../node/node-daemon.js";
import { subcommand } from "./subcommand.js";

interface DemoFlags {
  nodes: number;
  trees: number;
  roots: number;
  http?: string;
  basePort: number;
  series: number;
  logLevel: string;
}

/**
 * The embedded default: a whole small cluster on this machine. Roots and agents run in this one
 * process over real gRPC on 127.0.0.1; the first node samples this machine's /proc, the others are
 * synthetic. Prints what to scrape and open, and runs until Ctrl-C.
 */
export function demoCommand(): Command {
  return subcommand("demo")
    .description("run a whole small cluster on this machine: roots, relays and agents on 127.0.0.1")
    .option("--nodes <n>", "compute nodes", intOption(1, 4096), 64)
    .option("--trees <n>", "trees", intOption(1, 64), 8)
    .option("--roots <n>", "roots", intOption(1, 64), 2)
    .option("--http <host:port>", "HTTP address of the first root (default 127.0.0.1:<base-port + 1>)")
    .option("--base-port <port>", "ports from here up: roots first, then nodes", intOption(1024, 60000), 17400)
    .option("--series <n>", "series per synthetic node", intOption(1, 100000), 500)
    .addOption(new Option("--log-level <level>", "log level of the daemons").choices(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("warn"))
    .addHelpText("after", "\nExamples:\n  npm start\n  banyan demo --nodes 128 --trees 8 --roots 4 --http 127.0.0.1:9999")
    .action((flags: DemoFlags) => runDemo(flags).catch(exitOnError));
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const width = String(flags.nodes).length;
  const nodes = Array.from({ length: flags.nodes }, (_, k) => `node${String(k + 1).padStart(Math.max(2, width), "0")}`);
  const rootNames = Array.from({ length: flags.roots }, (_, k) => `root${k + 1}`);
  let topology: Topology = generateTopology({ nodes, roots: rootNames, trees: flags.trees, local: flags.basePort }).topology;
  if (flags.http !== undefined) {
    parseHostPort(flags.http, "--http");
    topology = { ...topology, roots: topology.roots.map((r, k) => (k === 0 ? { ...r, http: flags.http! } : r)) };
  }
  // The topology and the scrape config it printed stay after the demo stops (a Prometheus set up with
  // them finds the next demo on the same ports); one directory per base port, written over each run.
  const dir = join(tmpdir(), `banyan-demo-${flags.basePort}`);
  mkdirSync(dir, { recursive: true });
  const topoFile = join(dir, "topology.json");
  writeTopologyFile(topoFile, topology);
  const promFile = join(dir, "prometheus.yml");
  const scrape = renderTopology(topology, "prometheus");
  writeFileSync(promFile, scrape);

  const log = createLogger({ name: "banyan-demo", level: flags.logLevel as "warn" });
  routeGrpcLogs(log);
  const ctx = (name: string): { topology: Topology; topologySource: string; name: string; log: typeof log } => ({ topology, topologySource: topoFile, name, log });
  const roots: RootDaemon[] = [];
  const agents: NodeDaemon[] = [];
  try {
    for (const r of rootNames) roots.push(await startRoot(ctx(r), parseRootConfig({})));
    for (const [k, n] of nodes.entries()) {
      const cfg = parseAgentConfig(k === 0 ? { source: "procfs" } : { source: "synthetic", synthetic: { series: flags.series, seed: 7 } });
      agents.push(await startAgent(ctx(n), cfg));
    }
  } catch (err) {
    if (err instanceof BanyanError && /address already in use/.test(err.message)) {
      throw new BanyanError(Code.InvalidConfig, `${err.message.replace(/ \(another daemon.*\)$/, "")}: another demo running? start this one on other ports: --base-port ${flags.basePort + 1000}`);
    }
    throw err;
  }

  const out = process.stdout;
  out.write(`Banyan demo: ${flags.nodes} nodes in ${flags.trees} trees under ${flags.roots} roots, all on 127.0.0.1.\n`);
  out.write(`  topology: ${topoFile}   (try: npx banyan topology show ${topoFile})\n`);
  for (const r of topology.roots) out.write(`  ${r.name.padEnd(6)} http://${r.http}/metrics   live page http://${r.http}/   trees ${r.trees.join(" ")}\n`);
  out.write(`  ${nodes[0]} samples this machine's /proc (job="node"); the other ${flags.nodes - 1} nodes are synthetic, ${flags.series} series each.\n`);
  out.write(`\nPrometheus scrape config (kept after the demo stops; also in ${promFile}):\n\n${scrape}\nCtrl-C stops the cluster.\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    out.write("\nstopping the cluster…\n");
    // Leaves first, then their relays, then the roots: nobody reconnects to what is already gone.
    for (const a of [...agents].reverse()) await a.stop();
    for (const r of roots) await r.stop();
    out.write("stopped.\n");
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}
