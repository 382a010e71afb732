import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { LimitedWarning, type Logger } from "../../core/logger.js";

const run = promisify(execFile);

/** What the summary reads of a card (the root's /api/v1/jobs/<id>/report). */
interface CardFigures {
  readonly state: string;
  readonly metrics: Readonly<Record<string, number | null>>;
  readonly notes: readonly { readonly rule: string }[];
}

/** The figures a summary carries, in this order, by the card's names. */
const FIELDS: readonly (readonly [string, string])[] = [
  ["score", "score"],
  ["cpu_efficiency_percent", "cpu_eff"],
  ["memory_used_percent", "mem_used"],
  ["gpu_utilization_percent", "gpu_util"],
  ["idle_gpus", "idle_gpus"],
  ["time_used_percent", "time_used"],
  ["elapsed_s", "elapsed_s"],
  ["energy_joules", "energy_j"],
];

/**
 * A card as one line for Slurm's AdminComment, which outlives the raw series in Slurm's accounting
 * (`sacct -o AdminComment`), as jobstats keeps its summary there: `banyan:v1 score=46 cpu_eff=89.6
 * … notes=low-cpu-efficiency,time-overrequested`; unknown figures are `-`. At most 1,000 characters.
 */
export function adminComment(card: CardFigures): string {
  const parts = ["banyan:v1", ...FIELDS.map(([k, short]) => `${short}=${card.metrics[k] ?? "-"}`), `notes=${card.notes.map((n) => n.rule).join(",") || "-"}`];
  return parts.join(" ").replace(/[^\x20-\x7e]/g, "?").slice(0, 1000);
}

/**
 * Writes each ended job's summary into its AdminComment in Slurm's accounting (`jobs.adminComment`),
 * from the job's first node only (one write a job): once the roots have its verdict (asked every 2 s
 * for up to `waitMs`), `sacctmgr -i update job where jobid=<id> set AdminComment=<summary>`, as
 * jobstats stores its own. Slurm refuses `scontrol update` of a job that has finished (even in
 * EpilogSlurmctld), so this needs slurmdbd. In the background: the epilog is never held. A job it
 * could not do is said in a line (an hour at most between lines).
 */
export class AdminComments {
  private readonly failed: LimitedWarning;
  private readonly pending = new Set<string>();

  constructor(
    private readonly roots: () => readonly string[],
    private readonly sacctmgr: string,
    private readonly waitMs: number,
    log: Logger,
    private readonly fetchCard: (root: string, jobId: string) => Promise<CardFigures | null> = httpCard,
    private readonly pollMs = 2000,
  ) {
    this.failed = new LimitedWarning(log, "a job's summary could not be written to its AdminComment", 3_600_000);
  }

  /** Starts the wait for a job that ended here; at most 1,000 at once (a burst of ends past that is said, not queued). */
  ended(jobId: string): void {
    if (this.pending.has(jobId)) return;
    if (this.pending.size >= 1000) {
      this.failed.warn({ job: jobId, why: "1,000 jobs already wait for their verdicts" });
      return;
    }
    this.pending.add(jobId);
    void this.write(jobId).finally(() => this.pending.delete(jobId));
  }

  /** Waits for the verdict, then writes it; resolves with the summary written, or null. */
  async write(jobId: string, nowMs = Date.now()): Promise<string | null> {
    const until = nowMs + this.waitMs;
    let why = "no root knows the job";
    for (;;) {
      for (const root of this.roots()) {
        try {
          const card = await this.fetchCard(root, jobId);
          if (card?.state === "ended") {
            const text = adminComment(card);
            await run(this.sacctmgr, ["-i", "update", "job", "where", `jobid=${jobId}`, "set", `AdminComment=${text}`], { timeout: 10_000 });
            return text;
          }
          if (card !== null) why = "its card did not end in time";
        } catch (err) {
          why = (err as Error).message.split("\n")[0]!;
        }
      }
      if (Date.now() >= until) break;
      // Unref'd: an agent that stops does not wait for a verdict.
      await new Promise((r) => setTimeout(r, this.pollMs).unref());
    }
    this.failed.warn({ job: jobId, why });
    return null;
  }
}

async function httpCard(root: string, jobId: string): Promise<CardFigures | null> {
  const res = await fetch(`http://${root}/api/v1/jobs/${encodeURIComponent(jobId)}/report`, { signal: AbortSignal.timeout(5000) });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`${root}: HTTP ${res.status}`);
  }
  return (await res.json()) as CardFigures;
}
