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
