/**
 * The one error type of Banyan. Every failure that reaches a user or a log carries a `Code`,
 * so callers branch on the code, never on the message text.
 */
export enum Code {
  /** A command-line argument or option is malformed. */
  InvalidArgument = "invalid_argument",
  /** A config or topology file is malformed or violates its schema. */
  InvalidConfig = "invalid_config",
  /** A file, node or root named by the user does not exist. */
  NotFound = "not_found",
  /** A peer sent bytes that break the wire contract. */
  Protocol = "protocol",
  /** A run failed for a reason its message names (not bad input, not a bug): exit 1, the message alone. */
  Failed = "failed",
  /** A bug: an invariant of Banyan itself does not hold. */
  Internal = "internal",
}

/** Process exit status for bad input (config, arguments, files): the house rule is 2. */
export const EXIT_BAD_INPUT = 2;

export class BanyanError extends Error {
  override readonly name = "BanyanError";

  constructor(
    readonly code: Code,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** True for the codes that mean "the user gave us something wrong" (exit 2). */
  get isBadInput(): boolean {
    return (
      this.code === Code.InvalidArgument ||
      this.code === Code.InvalidConfig ||
      this.code === Code.NotFound
    );
  }
}

/** Builds an error naming where the bad value is, the value itself and what was expected. */
export function invalidValue(where: string, value: unknown, expected: string): BanyanError {
  return new BanyanError(
    Code.InvalidConfig,
    `${where}: got ${JSON.stringify(value)}, expected ${expected}`,
  );
}
