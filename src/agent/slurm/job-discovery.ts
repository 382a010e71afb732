import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../../core/logger.js";
import type { ControlRequest } from "./control-server.js";
import { hookRequest } from "./hook-request.js";

/** What discovery needs of the jobs the agent knows (the JobManager). */
export interface KnownJobs {
  isRunning(jobId: string): boolean;
  endedLately(jobId: string, nowMs: number): boolean;
  handle(req: ControlRequest): Promise<Record<string, unknown>>;
}

export interface DiscoveryPaths {
  readonly cgroupRoot: string;
  /** A registered job whose cgroup has been gone this long with no epilog is ended. */
  readonly lostEpilogMs: number;
  readonly proc?: string;
  readonly passwd?: string;
}

/**
 * The cgroup tree, for what the hooks did not say. A job with a cgroup but no registration (Slurm
 * 22.05 often skips the prolog of one of two jobs started together) is registered from its
 * processes' Slurm environment, or from the uid in its cgroup path when none shows within 5 s; a
 * registered job whose cgroup has been gone `lostEpilogMs` with no epilog is ended.
 */
export class JobDiscovery {
  /** Registered jobs whose cgroup was seen, and since when it is missing (null: present). */
  private readonly missingSince = new Map<string, number | null>();
  /** Unregistered job cgroups whose processes have not shown their environment yet: first seen. */
  private readonly pending = new Map<string, number>();

  constructor(
    private readonly jobs: KnownJobs,
    private readonly paths: DiscoveryPaths,
    private readonly log: Logger,
  ) {}

  async scan(nowMs = Date.now()): Promise<void> {
    const { cgroupRoot, lostEpilogMs, proc = "/proc", passwd = "/etc/passwd" } = this.paths;
    const found = listJobCgroups(cgroupRoot);
    const present = new Set(found.map((c) => c.jobId));
    for (const c of found) {
      if (this.jobs.isRunning(c.jobId)) {
        this.missingSince.set(c.jobId, null);
        continue;
      }
      if (this.jobs.endedLately(c.jobId, nowMs)) continue;
      const env = jobEnvironment(c, proc);
      const firstSeen = this.pending.get(c.jobId) ?? nowMs;
      this.pending.set(c.jobId, firstSeen);
      const uid = env?.["SLURM_JOB_UID"] ?? c.uid;
      if (uid === null || uid === undefined || (env === null && nowMs - firstSeen < 5000)) continue;
      this.pending.delete(c.jobId);
      // What the job's processes say, else what its cgroup path says (v1 names the uid).
      const { request } = hookRequest("start", { SLURM_JOB_UID: uid, SLURM_JOB_USER: userName(uid, passwd), ...env, SLURM_JOB_ID: c.jobId }, nowMs)!;
      await this.jobs.handle(request.op === "job-start" && c.uid === null ? { ...request, cgroupPath: c.dir } : request);
      this.missingSince.set(c.jobId, null);
      const from = env === null ? "cgroup path" : "processes' environment";
      this.log.warn({ job: c.jobId, cgroup: c.dir, from }, `job ${c.jobId} has a cgroup but no prolog registered it: registered from its ${from}`);
    }
    for (const id of this.pending.keys()) if (!present.has(id)) this.pending.delete(id);
    for (const [id, since] of this.missingSince) {
      if (present.has(id)) continue;
      if (!this.jobs.isRunning(id)) this.missingSince.delete(id);
      else if (since === null) this.missingSince.set(id, nowMs);
      else if (nowMs - since >= lostEpilogMs) {
        this.log.warn({ job: id }, `job ${id}'s cgroup has been gone ${Math.round((nowMs - since) / 1000)} s and no epilog ended it: ended now`);
        await this.jobs.handle({ op: "job-end", jobId: id, atMs: since });
      }
    }
  }
}

/** A job's cgroup as Slurm laid it out: where, and the uid when the path says it (cgroup v1). */
export interface JobCgroup {
  readonly jobId: string;
  readonly dir: string;
  readonly uid: string | null;
}

const JOB_DIR = /^job_(\d+)$/;

const list = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/**
 * The jobs that have a cgroup on this node: cgroup v2 `system.slice/slurmstepd.scope/job_<id>`, or
 * v1 `cpuacct/slurm[_<node>]/uid_<uid>/job_<id>`. A few directory reads, no process spawned.
 */
export function listJobCgroups(cgroupRoot: string): JobCgroup[] {
  const out: JobCgroup[] = [];
  const v2 = join(cgroupRoot, "system.slice/slurmstepd.scope");
  for (const d of list(v2)) {
    const m = JOB_DIR.exec(d);
    if (m) out.push({ jobId: m[1]!, dir: join(v2, d), uid: null });
  }
  const cpuacct = join(cgroupRoot, "cpuacct");
  for (const slurm of list(cpuacct).filter((d) => d === "slurm" || d.startsWith("slurm_"))) {
    for (const u of list(join(cpuacct, slurm))) {
      const uid = /^uid_(\d+)$/.exec(u)?.[1];
      if (uid === undefined) continue;
      for (const d of list(join(cpuacct, slurm, u))) {
        const m = JOB_DIR.exec(d);
        if (m) out.push({ jobId: m[1]!, dir: join(cpuacct, slurm, u, d), uid });
      }
    }
  }
  return out;
}

/**
 * The Slurm environment of one of the job's processes (SLURM_JOB_USER, SLURM_JOB_PARTITION,
 * SLURM_JOB_GPUS…), found through the cgroup.procs files under its cgroup; null when none of its
 * processes carries SLURM_JOB_ID=<id> yet (only slurmstepd runs, or /proc cannot be read).
 */
export function jobEnvironment(job: JobCgroup, proc = "/proc"): Record<string, string> | null {
  const pids: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const e of list(dir)) {
      if (e === "cgroup.procs") {
        try {
          pids.push(...readFileSync(join(dir, e), "utf8").split("\n").filter((p) => p !== ""));
        } catch {
          // gone meanwhile
        }
      } else if (depth < 4 && (e.startsWith("step_") || e === "user" || e.startsWith("task_"))) walk(join(dir, e), depth + 1);
    }
  };
  walk(job.dir, 0);
  for (const pid of pids.slice(0, 64)) {
    let raw: string;
    try {
      raw = readFileSync(join(proc, pid, "environ"), "latin1");
    } catch {
      continue;
    }
    const env: Record<string, string> = {};
    for (const kv of raw.split("\0")) {
      const eq = kv.indexOf("=");
      if (eq > 0 && kv.startsWith("SLURM_")) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    if (env["SLURM_JOB_ID"] === job.jobId) return env;
  }
  return null;
}

/** A user's name from the passwd file, or the uid itself when it has none there (LDAP without nss files). */
export function userName(uid: string, passwd = "/etc/passwd"): string {
  try {
    for (const line of readFileSync(passwd, "utf8").split("\n")) {
      const f = line.split(":");
      if (f[2] === uid && f[0]) return f[0];
    }
  } catch {
    // no passwd file
  }
  return uid;
}
