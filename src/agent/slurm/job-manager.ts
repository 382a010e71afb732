import { randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import writeFileAtomic from "write-file-atomic";
import type { Logger } from "../../core/logger.js";
import type { PushAuth } from "../push-server.js";
import { runningJobSchema, type ControlHandlers, type ControlRequest } from "./control-server.js";
import type { RunningJob } from "./job-cgroups.js";
import type { JobRegistry } from "./job-registry.js";
import { slurmExtras, type SlurmJobFacts } from "./scontrol.js";
import { firstHost } from "../../topology/hostlist.js";

/**
 * What the control socket does: `job-start` registers the job and writes its push token to
 * `<runDir>/jobs/<id>.token`, readable only by the job's user (so one user cannot publish as
 * another's job); `job-end` takes the last reading, writes the post-mortem report to
 * `<reportDir>/<id>.<node>.json`, logs it in one line, and forgets the token and the job's pushes.
 * Each running job is also kept as `<runDir>/jobs/<id>.json` (root only) for `restore`.
 */
const ENDED_MEMORY_MS = 600_000;

export class JobManager implements ControlHandlers, PushAuth {
  private readonly tokens = new Map<string, string>();
  /** Jobs ended lately (id → when), so a cgroup Slurm has not removed yet does not bring one back. */
  private readonly ended = new Map<string, number>();

  constructor(
    private readonly registry: JobRegistry,
    private readonly runDir: string,
    private readonly reportDir: string,
    private readonly log: Logger,
    /** Told of each job's end, with its registration (undefined for a job this node never saw). */
    private readonly onEnd: (jobId: string, job: RunningJob | undefined) => void = () => undefined,
    /** Slurm's word on a job (scontrol): asked at a job's start for what its hooks do not say (its time limit). */
    private readonly slurm: ((jobId: string) => Promise<SlurmJobFacts | null>) | null = null,
  ) {}

  /** The labels pushed series of a job carry. */
  jobLabels(jobId: string): Record<string, string> | undefined {
    const job = this.registry.running().find((j) => j.jobId === jobId);
    return job === undefined ? undefined : { slurm_job_id: job.jobId, user: job.user, partition: job.partition };
  }

  /** The job a push token belongs to, or undefined. */
  jobOfToken(token: string): string | undefined {
    if (token.length === 0) return undefined; // an empty token never authenticates
    const given = Buffer.from(token);
    for (const [jobId, t] of this.tokens) {
      const want = Buffer.from(t);
      if (want.length > 0 && want.length === given.length && timingSafeEqual(want, given)) return jobId;
    }
    return undefined;
  }

  /**
   * Takes back the jobs an earlier agent process registered (it crashed, or was upgraded) from
   * `<runDir>/jobs/<id>.json`, with their tokens, so a restart forgets no running job. Epilogs that
   * ran meanwhile wait in the spool and end them next. Returns how many came back.
   */
  restore(): number {
    const dir = join(this.runDir, "jobs");
    let n = 0;
    let files: string[];
    try {
      files = readdirSync(dir).filter((f) => f.endsWith(".json"));
    } catch {
      return 0;
    }
    for (const f of files) {
      try {
        const job = runningJobSchema.parse(JSON.parse(readFileSync(join(dir, f), "utf8")));
        const token = readFileSync(join(dir, `${job.jobId}.token`), "utf8").trim();
        if (!/^[0-9a-f]{48}$/.test(token)) throw new Error(`its token file is not a token (${token.length} characters)`);
        this.registry.start(job);
        this.tokens.set(job.jobId, token);
        n++;
      } catch (err) {
        this.log.warn({ file: join(dir, f), err: (err as Error).message }, "a job registration left by an earlier agent is unreadable: skipped");
      }
    }
    if (n > 0) this.log.info({ jobs: n }, `${n} running job(s) taken back from ${dir}`);
    return n;
  }

  /**
   * Asks Slurm, in the background, what the prolog's environment does not say (the time limit; the
   * nodes when it did not give them). Only the job's first node asks: one scontrol call a job, not
   * one a node (a 10,000-node job's start would be 10,000 calls into slurmctld).
   */
  private askSlurm(job: RunningJob): void {
    if (this.slurm === null) return;
    const first = job.nodelist === undefined ? undefined : firstHost(job.nodelist);
    if (first !== undefined && first !== this.registry.node) return;
    this.slurm(job.jobId)
      .then((facts) => {
        if (facts !== null) this.registry.update(job.jobId, slurmExtras(facts));
      })
      .catch(() => undefined); // the card then says its time limit is unknown
  }

  /** The running job registered with this SLUID (Slurm 26.05 names its cgroup by it). */
  jobOfSluid(sluid: string): string | undefined {
    const s = sluid.toUpperCase();
    return this.registry.running().find((j) => j.sluid?.toUpperCase() === s)?.jobId;
  }

  isRunning(jobId: string): boolean {
    return this.registry.has(jobId);
  }

  /** Whether the job ended in the last 10 minutes (its cgroup may still be there). */
  endedLately(jobId: string, nowMs = Date.now()): boolean {
    const at = this.ended.get(jobId);
    return at !== undefined && nowMs - at <= ENDED_MEMORY_MS;
  }

  async handle(req: ControlRequest): Promise<Record<string, unknown>> {
    if (req.op === "ping") return { node: this.registry.node, jobs: this.registry.running().length };
    const dir = join(this.runDir, "jobs");
    if (req.op === "job-start") {
      const job: RunningJob = {
        jobId: req.jobId,
        user: req.user,
        uid: req.uid,
        partition: req.partition,
        account: req.account,
        startedAtMs: req.atMs ?? Date.now(),
        ...(req.cgroupPath ? { cgroupPath: req.cgroupPath } : {}),
        ...(req.gpus ? { gpus: req.gpus } : {}),
        ...(req.cpus ? { cpus: req.cpus } : {}),
        ...(req.nodes ? { nodes: req.nodes } : {}),
        ...(req.nodelist ? { nodelist: req.nodelist } : {}),
        ...(req.timeLimitS !== undefined ? { timeLimitS: req.timeLimitS } : {}),
        ...(req.sluid !== undefined ? { sluid: req.sluid } : {}),
      };
      this.registry.start(job);
      if (job.timeLimitS === undefined) this.askSlurm(job);
      const token = this.tokens.get(req.jobId) ?? randomBytes(24).toString("hex");
      this.tokens.set(req.jobId, token);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const file = join(dir, `${req.jobId}.token`);
      // Atomically (a temp file, fsync, chown, rename): a SIGKILL half way left an empty or a
      // root-owned token before, and an empty one then let anyone push as the job.
      writeFileAtomic.sync(file, token + "\n", { mode: 0o400, chown: { uid: Number(req.uid), gid: Number(req.gid ?? req.uid) } });
      writeFileAtomic.sync(join(dir, `${req.jobId}.json`), JSON.stringify(job) + "\n", { mode: 0o600 });
      this.log.info({ job: req.jobId, user: req.user, partition: req.partition, gpus: req.gpus }, "job started");
      return { tokenFile: file };
    }
    const job = this.registry.running().find((j) => j.jobId === req.jobId);
    const report = this.registry.end(req.jobId, req.exitCode ?? null, req.atMs ?? Date.now());
    const now = Date.now();
    for (const [id, at] of this.ended) if (now - at > ENDED_MEMORY_MS) this.ended.delete(id);
    this.ended.set(req.jobId, req.atMs ?? now);
    this.tokens.delete(req.jobId);
    rmSync(join(dir, `${req.jobId}.token`), { force: true });
    rmSync(join(dir, `${req.jobId}.json`), { force: true });
    this.onEnd(req.jobId, job);
    if (report === null) return { report: null };
    mkdirSync(this.reportDir, { recursive: true });
    const file = join(this.reportDir, `${req.jobId}.${this.registry.node}.json`);
    writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
    this.log.info({ ...report }, `job ${req.jobId} ended after ${report.duration_s.toFixed(0)} s`);
    return { report: file };
  }
}
