import { CommanderError, InvalidArgumentError } from "commander";
import { BanyanError, Code, EXIT_BAD_INPUT } from "../core/errors.js";

/**
 * The CLI's only error policy: bad input (BanyanError with a bad-input code, or a usage error)
 * prints one clear message and exits 2; a run that failed for a reason it names (Code.Failed) prints
 * it and exits 1; anything else is a bug and shows its stack.
 */
export function exitOnError(err: unknown): never {
  if (err instanceof CommanderError) {
    // Commander already printed its message (or the help); keep its 0 for --help/--version.
    process.exit(err.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
  }
  if (err instanceof BanyanError && err.isBadInput) {
    process.stderr.write(`banyan: ${err.message}\n`);
    process.exit(EXIT_BAD_INPUT);
  }
  if (err instanceof BanyanError && err.code === Code.Failed) {
    process.stderr.write(`banyan: ${err.message}\n`);
    process.exit(1);
  }
  process.stderr.write(`banyan: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
}

/** Commander option parser for a whole number in [min, max]. */
export function intOption(min: number, max: number): (value: string) => number {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    return n;
  };
}
