import { Command } from "commander";

/**
 * A subcommand with the house settings: usage errors throw (so the CLI exits 2, not commander's 1)
 * and point at --help. Commander does not copy these to commands added with addCommand().
 */
export function subcommand(name: string): Command {
  return new Command(name).exitOverride().showHelpAfterError("(run with --help for usage)");
}
