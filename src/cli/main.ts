#!/usr/bin/env node
import { Command } from "commander";
import { VERSION } from "../core/version.js";
import { exitOnError } from "./cli-errors.js";

/**
 * The `banyan` command: it parses and wires; every subcommand lives in its own file and is loaded
 * only when run, so `banyan agent` on a compute node does not load the bench, the topology
 * generator or the demo (measured: a procfs agent's RSS with everything loaded up front, see the
 * bench figures in the CHANGELOG).
 */
const SUBCOMMANDS: Record<string, () => Promise<Command>> = {
  topology: async () => (await import("./topology-command.js")).topologyCommand(),
  root: async () => (await import("./daemon-commands.js")).rootCommand(),
  agent: async () => (await import("./daemon-commands.js")).agentCommand(),
  relay: async () => (await import("./daemon-commands.js")).relayCommand(),
  demo: async () => (await import("./demo-command.js")).demoCommand(),
  bench: async () => (await import("./bench-command.js")).benchCommand(),
  job: async () => (await import("./job-command.js")).jobCommand(),
  certs: async () => (await import("./certs-command.js")).certsCommand(),
  report: async () => (await import("./report-command.js")).reportCommand(),
  dashboards: async () => (await import("./dashboards-command.js")).dashboardsCommand(),
};

const SUMMARY: Record<string, string> = {
  topology: "generate, check, show, compare, draw and query the trees of a cluster",
  root: "run a root: terminates its trees and serves them to Prometheus at /metrics",
  agent: "run a node's agent: samples the node and relays its children's frames",
  relay: "run a dedicated relay: forwards its children's frames, samples nothing",
  demo: "run a whole small cluster on this machine: roots, relays and agents on 127.0.0.1",
  bench: "simulate a cluster at scale and report bandwidth, latency, CPU, memory and failover figures",
  job: "Slurm prolog/epilog: register or end a job on this node's agent (always exits 0)",
  certs: "make the site CA and a certificate per node and root, for mutual TLS on the trees",
  report: "usage per user, account, partition or day from the job reports and the roots' job-end logs",
  dashboards: "generate Grafana dashboards for the cluster, a job, a user and Banyan's health",
};

try {
  const program = new Command("banyan")
    .description("Banyan: tree-overlay telemetry for HPC clusters, one Prometheus endpoint per tree root.")
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");
  const words = process.argv.slice(2).filter((a) => !a.startsWith("-"));
  const wanted = words[0] === "help" ? words[1] : words[0];
  for (const name of Object.keys(SUBCOMMANDS)) {
    // Only the subcommand asked for is loaded; the others are listed for --help.
    program.addCommand(name === wanted ? await SUBCOMMANDS[name]!() : new Command(name).description(SUMMARY[name]!));
  }
  await program.parseAsync(process.argv);
} catch (err) {
  exitOnError(err);
}
