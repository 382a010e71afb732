#!/usr/bin/env node
import { Command } from "commander";
import { VERSION } from "../core/version.js";
import { exitOnError } from "./cli-errors.js";
import { agentCommand, relayCommand, rootCommand } from "./daemon-commands.js";
import { demoCommand } from "./demo-command.js";
import { topologyCommand } from "./topology-command.js";

/** The `banyan` command: it parses and wires; every subcommand lives in its own file. */
const program = new Command("banyan")
  .description("Banyan: tree-overlay telemetry for HPC clusters, one Prometheus endpoint per tree root.")
  .version(VERSION)
  .exitOverride()
  .showHelpAfterError("(run with --help for usage)")
  .addCommand(topologyCommand())
  .addCommand(rootCommand())
  .addCommand(agentCommand())
  .addCommand(relayCommand())
  .addCommand(demoCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  exitOnError(err);
}
