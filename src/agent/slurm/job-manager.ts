import { randomBytes } from "node:crypto";
import { chownSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../core/logger.js";
import type { PushAuth } from "../push-server.js";
import { runningJobSchema, type ControlHandlers, type ControlRequest } from "./control-server.js";
import { hookRequest } from "./hook-request.js";
import type { RunningJob } from "./job-cgroups.js";
import { jobEnvironment, listJobCgroups, userName } from "./job-discovery.js";
import type { JobRegistry } from "./job-registry.js";

/**
 * What the control socket does: `job-start` registers the job and writes its push token to
 * `<runDir>/jobs/<id>.token`, readable only by the job's user (so one user cannot publish as
 * another's job); `job-end` takes the last reading, writes the post-mortem report to
 * `<reportDir>/<id>.<node>.json`, logs it in one line, and forgets the token and the job's pushes.
 * Each running job is also kept as `<runDir>/jobs/<id>.json` (root only) for `restore`.
 */
export class JobManager implements ControlHandlers, PushAuth {
  private readonly tokens = new Map<string, string>();
  /** Jobs ended lately (id → when), so a cgroup Slurm has not removed yet does not bring one back. */
  private readonly ended = new Map<string, number>();
  /** Registered jobs whose cgroup was seen, and since when it is missing. */
  private readonly cgroupMissingSince = new Map<string, number | null>();
  /** Unregistered job cgroups whose processes have not shown their environment yet: first seen. */
  private readonly pending = new Map<string, number>();

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
   * Looks at the cgroup tree for what the hooks did not say. A job with a cgroup but no registration
   * (Slurm 22.05 often skips the prolog of one of two jobs started together) is registered from its
   * processes' Slurm environment, or from the uid in its cgroup path when none shows within 5 s;
   * a registered job whose cgroup has been gone `lostEpilogMs` with no epilog is ended.
   */
  async discover(where: { cgroupRoot: string; lostEpilogMs: number; proc?: string; passwd?: string }, nowMs = Date.now()): Promise<void> {
    const { cgroupRoot, lostEpilogMs, proc = "/proc", passwd = "/etc/passwd" } = where;
    for (const [id, at] of this.ended) if (nowMs - at > 600_000) this.ended.delete(id);
    const found = listJobCgroups(cgroupRoot);
    const present = new Set(found.map((c) => c.jobId));
    for (const c of found) {
      if (this.registry.has(c.jobId)) {
        this.cgroupMissingSince.set(c.jobId, null);
        continue;
      }
      if (this.ended.has(c.jobId)) continue;
      const env = jobEnvironment(c, proc);
      const firstSeen = this.pending.get(c.jobId) ?? nowMs;
      this.pending.set(c.jobId, firstSeen);
      const uid = env?.["SLURM_JOB_UID"] ?? c.uid;
      if (uid === null || uid === undefined || (env === null && nowMs - firstSeen < 5000)) continue;
      this.pending.delete(c.jobId);
      // What the job's processes say, else what its cgroup path says (v1 names the uid).
      const { request } = hookRequest("start", { SLURM_JOB_UID: uid, SLURM_JOB_USER: userName(uid, passwd), ...env, SLURM_JOB_ID: c.jobId }, nowMs)!;
      await this.handle(request.op === "job-start" && c.uid === null ? { ...request, cgroupPath: c.dir } : request);
      this.cgroupMissingSince.set(c.jobId, null);
      this.log.warn({ job: c.jobId, cgroup: c.dir, from: env === null ? "cgroup path" : "environment" }, `job ${c.jobId} has a cgroup but no prolog registered it: registered from its ${env === null ? "cgroup path" : "processes' environment"}`);
    }
    for (const id of this.pending.keys()) if (!present.has(id)) this.pending.delete(id);
    for (const [id, since] of this.cgroupMissingSince) {
      if (present.has(id)) continue;
      if (!this.registry.has(id)) this.cgroupMissingSince.delete(id);
      else if (since === null) this.cgroupMissingSince.set(id, nowMs);
      else if (nowMs - since >= lostEpilogMs) {
        this.log.warn({ job: id }, `job ${id}'s cgroup has been gone ${Math.round((nowMs - since) / 1000)} s and no epilog ended it: ended now`);
        await this.handle({ op: "job-end", jobId: id, atMs: since });
      }
    }
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
      };
      this.registry.start(job);
      const token = this.tokens.get(req.jobId) ?? randomBytes(24).toString("hex");
      this.tokens.set(req.jobId, token);
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const file = join(dir, `${req.jobId}.token`);
      writeFileSync(file, token + "\n", { mode: 0o400 });
      chownSync(file, Number(req.uid), Number(req.gid ?? req.uid));
      writeFileSync(join(dir, `${req.jobId}.json`), JSON.stringify(job) + "\n", { mode: 0o600 });
      this.log.info({ job: req.jobId, user: req.user, partition: req.partition, gpus: req.gpus }, "job started");
      return { tokenFile: file };
    }
    const report = this.registry.end(req.jobId, req.exitCode ?? null, req.atMs ?? Date.now());
    this.ended.set(req.jobId, req.atMs ?? Date.now());
    this.cgroupMissingSince.delete(req.jobId);
    this.tokens.delete(req.jobId);
    rmSync(join(dir, `${req.jobId}.token`), { force: true });
    rmSync(join(dir, `${req.jobId}.json`), { force: true });
    this.onEnd(req.jobId);
    if (report === null) return { report: null };
    mkdirSync(this.reportDir, { recursive: true });
    const file = join(this.reportDir, `${req.jobId}.${this.registry.node}.json`);
    writeFileSync(file, JSON.stringify(report, null, 2) + "\n");
    this.log.info({ ...report }, `job ${req.jobId} ended after ${report.duration_s.toFixed(0)} s`);
    return { report: file };
  }
}
