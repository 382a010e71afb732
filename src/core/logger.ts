import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/**
 * Structured JSON logs on stderr (pino); human-readable lines when stderr is a terminal.
 * Daemons receive their logger; nothing logs through a global one.
 */
export function createLogger(opts: { level?: LevelWithSilent; name?: string; pretty?: boolean } = {}): Logger {
  const pretty = opts.pretty ?? process.stderr.isTTY === true;
  const base = { level: opts.level ?? (process.env["BANYAN_LOG_LEVEL"] as LevelWithSilent | undefined) ?? "info", name: opts.name ?? "banyan" };
  if (pretty) {
    return pino({ ...base, transport: { target: "pino-pretty", options: { destination: 2, colorize: true, translateTime: "HH:MM:ss.l" } } });
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything: for tests and in-process benches. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

/**
 * A warning a peer can trigger at will (a refused frame, an overflow), logged at most once per
 * `everyMs`; the next line written says how many were left out meanwhile, so nothing is hidden and a
 * misbehaving peer cannot flood the log.
 */
export class LimitedWarning {
  private lastMs = -Infinity;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly everyMs = 1000,
  ) {}

  warn(fields: object, nowMs = Date.now()): void {
    if (nowMs - this.lastMs < this.everyMs) {
      this.suppressed++;
      return;
    }
    this.lastMs = nowMs;
    this.log.warn(this.suppressed > 0 ? { ...fields, alsoSince: this.suppressed } : fields, this.suppressed > 0 ? `${this.msg} (and ${this.suppressed} more since the last line)` : this.msg);
    this.suppressed = 0;
  }
}

/**
 * Events that happen per node (down, up, left, failed over), logged as one line per window with
 * the count and the first few names, never one line each: readable at 50,000 nodes. The whole list
 * is what a status API is for. `flush` is called by the owner's timer; nothing is lost, only folded.
 */
export class EventSummary {
  private count = 0;
  private readonly first: string[] = [];

  constructor(
    private readonly log: Logger,
    private readonly msg: string,
    private readonly level: "info" | "warn" = "info",
    private readonly names = 5,
  ) {}

  note(name: string): void {
    this.count++;
    if (this.first.length < this.names) this.first.push(name);
  }

  /** Writes the line for what was noted since the last flush (nothing when nothing was). */
  flush(): void {
    if (this.count === 0) return;
    const more = this.count - this.first.length;
    this.log[this.level]({ count: this.count, first: this.first }, `${this.msg}: ${this.count} (${this.first.join(", ")}${more > 0 ? `, and ${more} more` : ""})`);
    this.count = 0;
    this.first.length = 0;
  }
}
