import { appendFile, rename, stat } from "node:fs/promises";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import type { EventLog, RootEvent } from "./event-log.js";

/** A job-end log past this size is rotated to `<file>.1` (one older file kept). */
const ROTATE_BYTES = 256 * 1024 * 1024;

/**
 * `events.jobLog`: one JSON line per job that ended at this root (its job_end event: who, where,
 * when, and the figures the root saw across the job's nodes), for `banyan report usage` — the
 * roots see every job end, while the epilogs' reports are spread over the nodes. ~450 bytes a job;
 * appended in order, off the event loop; rotated at 256 MiB.
 */
export class JobLog {
  private chain: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | null = null;
  private readonly failed: LimitedWarning;

  constructor(
    private readonly file: string,
    log: Logger,
  ) {
    this.failed = new LimitedWarning(log, "writing the job-end log failed", 60_000);
  }

  start(events: EventLog): void {
    this.unsubscribe = events.subscribe((e) => {
      if (e.type === "job_end") this.write(e);
    });
  }

  stop(): Promise<void> {
    this.unsubscribe?.();
    return this.chain;
  }

  private write(e: RootEvent): void {
    const d = e.details ?? {};
    const line = JSON.stringify({
      job_id: e.job,
      user: e.labels["user"] ?? "",
      account: e.labels["account"] ?? "",
      partition: e.labels["partition"] ?? "",
      root: e.root,
      ended_at: e.time,
      ...d,
    });
    this.chain = this.chain
      .then(async () => {
        const size = await stat(this.file).then((s) => s.size, () => 0);
        if (size > ROTATE_BYTES) await rename(this.file, `${this.file}.1`);
        await appendFile(this.file, line + "\n", { mode: 0o640 });
      })
      .catch((err: Error) => this.failed.warn({ file: this.file, err: err.message }));
  }
}
