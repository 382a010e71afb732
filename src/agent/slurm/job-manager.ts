import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../core/logger.js";
import type { PushAuth } from "../push-server.js";
import type { ControlHandlers, ControlRequest } from "./control-server.js";
import type { JobRegistry } from "./job-registry.js";

/**
 * What the control socket does: `job-start` registers the job and writes its push token to
 * `<runDir>/jobs/<id>.token`, readable only by the job's user (so one user cannot publish as
 * another's job); `job-end` takes the last reading, writes the post-mortem report to
 * `<reportDir>/<id>.<node>.json`, logs it in one line, and forgets the token and the job's pushes.
 */
export class JobManager implements ControlHandlers, PushAuth {
  private readonly tokens = new Map<string, string>();

  constructor(
    private readonly registry: JobRegistry,
    private readonly runDir: string,
    private readonly reportDir: string,
    private readonly log: Logger,
    private readonly onEnd: (jobId: string) => void = () => undefined,
  ) {}

  /** The labels pushed series of a job carry. */
  jobLabels(jobId: string): Record<string, string> | undefined {
    const job = this.registry.running().find((j) => j.jobId === jobId);
    return job === undefined ? undefined : { slurm_job_id: job.jobId, user: job.user, partition: job.partition };
  }

  /** The job a push token belongs to, or undefined. */
  jobOfToken(token: string): string | undefined {
    for (const [jobId, t] of this.tokens) if (t === token) return jobId;
    return undefined;
  }

  async handle(req: ControlRequest): Promise<Record<string, unknown>> {
    if (req.op === "ping") return { node: this.registry.node, jobs: this.registry.running().length };
    if (req.op === "job-start") {
      this.registry.start({ jobId: req.jobId, user: req.user, uid: req.uid, partition: req.partition, account: req.account, startedAtMs: Date.now(), ...(req.cgroupPath ? { cgroupPath: req.cgroupPath } : {}), ...(req.gpus ? { gpus: req.gpus } : {}) });
      const token = this.tokens.get(req.jobId) ?? randomBytes(24).toString("hex");
      this.tokens.set(req.jobId, token);
      const dir = join(this.runDir, "jobs");
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const file = join(dir, `${req.jobId}.token`);
      writeFileSync(file, token + "\n", { mode: 0o400 });
      chownSync(file, Number(req.uid), Number(req.gid ?? req.uid));
      this.log.info({ job: req.jobId, user: req.user, partition: req.partition, gpus: req.gpus }, "job started");
      return { tokenFile: file };
    }
    const report = this.registry.end(req.jobId, req.exitCode ?? null);
    this.tokens.delete(req.jobId);
    rmSync(join(this.runDir, "jobs", `${req.jobId}.token`), { force: true });
    this.onEnd(req.jobId);
    if (report === null) return { report: null };
    mkdirSync(this.reportDir, { recursive: true });
    const file = join(this.reportDir, `${req.jobId}.${this.registry.node}.json`);
    writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
    this.log.info({ ...report }, `job ${req.jobId} ended after ${report.duration_s.toFixed(0)} s`);
    return { report: file };
  }
}
