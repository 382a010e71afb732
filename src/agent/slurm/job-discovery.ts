import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import type { ControlRequest } from "./control-server.js";
import { findScontrol, scontrolFacts, slurmExtras, sluidJobOf, type SlurmJobFacts } from "./scontrol.js";

/** What discovery needs of the jobs the agent knows (the JobManager). */
export interface KnownJobs {
  isRunning(jobId: string): boolean;
  /** The running job registered with this SLUID (its prolog's SLURM_JOB_SLUID). */
  jobOfSluid?(sluid: string): string | undefined;
  endedLately(jobId: string, nowMs: number): boolean;
  handle(req: ControlRequest): Promise<Record<string, unknown>>;
}

export interface DiscoveryPaths {
  readonly cgroupRoot: string;
  /** A registered job whose cgroup has been gone this long with no epilog is ended. */
  readonly lostEpilogMs: number;
  readonly proc?: string;
  readonly passwd?: string;
  /** Slurm's word on a job (default: `scontrol show job -d -o`); null when Slurm cannot be asked. */
  readonly slurm?: (jobId: string) => Promise<SlurmJobFacts | null>;
  /** The job id of a SLUID (default: the jobs squeue lists on this node, asked of scontrol); null when none has it. */
  readonly sluidJob?: (sluid: string) => Promise<string | null>;
}

/**
 * The cgroup tree, for what the hooks did not say. A job with a cgroup but no registration (Slurm
 * 22.05 often skips the prolog of one of two jobs started together) is registered from what only
 * the kernel and Slurm say: its user from the real uid of its processes (`/proc/<pid>/status`) or
 * the uid in its cgroup path, its partition, account and GPUs from `scontrol show job`. Never from a
 * process's environment: the job's own user writes that (`exec env SLURM_JOB_UID=0 …`), so a job
 * could have been registered as another user's. A registered job whose cgroup has been gone
 * `lostEpilogMs` with no epilog is ended.
 */
export class JobDiscovery {
  /** Registered jobs whose cgroup was seen, and since when it is missing (null: present). */
  private readonly missingSince = new Map<string, number | null>();
  /** Unregistered job cgroups with no user process yet: first seen. */
  private readonly pending = new Map<string, number>();
  private readonly slurm: (jobId: string) => Promise<SlurmJobFacts | null>;
  private readonly noSlurm: LimitedWarning;
  /** SLUID directories seen: their job's id, or when Slurm last did not know it (asked again 30 s later). */
  private readonly sluids = new Map<string, string | { missAtMs: number }>();
  private readonly sluidJob: (sluid: string) => Promise<string | null>;

  constructor(
    private readonly jobs: KnownJobs,
    private readonly paths: DiscoveryPaths,
    private readonly log: Logger,
  ) {
    this.slurm = paths.slurm ?? scontrolFacts(findScontrol());
    this.sluidJob = paths.sluidJob ?? sluidJobOf(findScontrol());
    this.noSlurm = new LimitedWarning(log, "scontrol could not say a discovered job's partition, account and GPUs: registered without them", 60_000);
  }

  /** The job id of a SLUID-named cgroup: its registration's, else Slurm's (remembered; a miss is asked again 30 s later). */
  private async jobOfSluid(sluid: string, nowMs: number): Promise<string | null> {
    const registered = this.jobs.jobOfSluid?.(sluid);
    if (registered !== undefined) return registered;
    const known = this.sluids.get(sluid);
    if (typeof known === "string") return known;
    if (known !== undefined && nowMs - known.missAtMs < 30_000) return null;
    const jobId = await this.sluidJob(sluid).catch(() => null);
    this.sluids.set(sluid, jobId ?? { missAtMs: nowMs });
    return jobId;
  }

  async scan(nowMs = Date.now()): Promise<void> {
    const { cgroupRoot, lostEpilogMs, proc = "/proc", passwd = "/etc/passwd" } = this.paths;
    const listed = listJobCgroups(cgroupRoot);
    const found: (JobCgroup & { jobId: string })[] = [];
    for (const c of listed) {
      const jobId = c.jobId ?? (await this.jobOfSluid(c.sluid!, nowMs));
      if (jobId !== null) found.push({ ...c, jobId });
    }
    const present = new Set(found.map((c) => c.jobId));
    for (const c of found) {
      if (this.jobs.isRunning(c.jobId)) {
        this.missingSince.set(c.jobId, null);
        continue;
      }
      if (this.jobs.endedLately(c.jobId, nowMs)) continue;
      const owner = jobOwner(c, proc);
      const firstSeen = this.pending.get(c.jobId) ?? nowMs;
      this.pending.set(c.jobId, firstSeen);
      // The kernel's word: a process's real uid, else (v1) the uid Slurm put in the cgroup path.
      const uid = owner?.uid ?? c.uid;
      if (uid === null || (owner === null && nowMs - firstSeen < 5000)) continue;
      this.pending.delete(c.jobId);
      const facts = await this.slurm(c.jobId).catch(() => null);
      if (facts === null) this.noSlurm.warn({ job: c.jobId });
      const request: ControlRequest = {
        op: "job-start",
        jobId: c.jobId,
        user: userName(uid, passwd),
        uid,
        ...(owner !== null ? { gid: owner.gid } : {}),
        partition: facts?.partition ?? "",
        account: facts?.account ?? "",
        ...(facts !== null && facts.gpus.length > 0 ? { gpus: [...facts.gpus] } : {}),
        ...(facts?.cpus !== undefined ? { cpus: facts.cpus } : {}),
        ...slurmExtras(facts),
        // When its cgroup was made (slurmstepd makes it as the job starts): discovery comes seconds later.
        atMs: createdMs(c.dir) ?? nowMs,
        ...(c.uid === null ? { cgroupPath: c.dir } : {}),
        ...(c.sluid !== undefined ? { sluid: c.sluid } : {}),
      };
      await this.jobs.handle(request);
      this.missingSince.set(c.jobId, null);
      const from = owner === null ? "cgroup path" : "processes' real uid";
      this.log.warn({ job: c.jobId, cgroup: c.dir, from, slurm: facts !== null }, `job ${c.jobId} has a cgroup but no prolog registered it: registered (user from its ${from}${facts !== null ? ", the rest from scontrol" : ""})`);
    }
    for (const id of this.pending.keys()) if (!present.has(id)) this.pending.delete(id);
    // SLUIDs whose directory is gone are forgotten (a miss is kept while its directory is there: asked again 30 s later, not every scan).
    const dirs = new Set(listed.map((c) => c.sluid));
    for (const sluid of this.sluids.keys()) if (!dirs.has(sluid)) this.sluids.delete(sluid);
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
  /** The job's id; null for a cgroup v2 directory named by the job's SLUID (Slurm 26.05's default). */
  readonly jobId: string | null;
  readonly dir: string;
  readonly uid: string | null;
  /** The SLUID its directory is named by (Slurm 26.05+, cgroup v2, unless CgroupJobIdPaths=yes). */
  readonly sluid?: string;
}

const JOB_DIR = /^job_(\d+)$/;
/** A SLUID as Slurm prints it: "s" and 13 Crockford base-32 digits (sEKNKTV3WPV500). */
export const SLUID = /^[sS][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{13}$/;

const list = (dir: string): string[] => {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
};

/**
 * The jobs that have a cgroup on this node: cgroup v2 `system.slice/slurmstepd.scope/job_<id>`, or
 * `…/slurmstepd.scope/<SLUID>` as Slurm 26.05 names them by default (the job's id is not in the
 * path: discovery asks Slurm), or v1 `cpuacct/slurm[_<node>]/uid_<uid>/job_<id>`. A few directory
 * reads, no process spawned.
 */
export function listJobCgroups(cgroupRoot: string): JobCgroup[] {
  const out: JobCgroup[] = [];
  const v2 = join(cgroupRoot, "system.slice/slurmstepd.scope");
  for (const d of list(v2)) {
    const m = JOB_DIR.exec(d);
    if (m) out.push({ jobId: m[1]!, dir: join(v2, d), uid: null });
    else if (SLUID.test(d)) out.push({ jobId: null, dir: join(v2, d), uid: null, sluid: d });
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
 * Who runs the job, as the kernel says: the real uid and gid (`/proc/<pid>/status`) of the first of
 * its processes (found through the cgroup.procs files of its steps' user and task cgroups) that is
 * not root's (slurmstepd's); null while none is there yet. A process cannot change its real uid, and
 * cannot leave its job's cgroup.
 */
export function jobOwner(job: JobCgroup, proc = "/proc"): { uid: string; gid: string } | null {
  const pids: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const e of list(dir)) {
      if (e === "cgroup.procs") {
        try {
          pids.push(...readFileSync(join(dir, e), "utf8").split("\n").filter((p) => /^\d+$/.test(p)));
        } catch {
          // gone meanwhile
        }
      } else if (depth < 4 && (e.startsWith("step_") || e === "user" || e.startsWith("task_"))) walk(join(dir, e), depth + 1);
    }
  };
  walk(job.dir, 0);
  for (const pid of pids.slice(0, 64)) {
    let status: string;
    try {
      status = readFileSync(join(proc, pid, "status"), "latin1");
    } catch {
      continue;
    }
    const uid = /^Uid:\s+(\d+)/m.exec(status)?.[1];
    const gid = /^Gid:\s+(\d+)/m.exec(status)?.[1];
    if (uid !== undefined && uid !== "0") return { uid, gid: gid ?? uid };
  }
  return null;
}

/** When a cgroup directory was made (its inode's change time: cgroupfs sets it at mkdir); null when it is gone. */
function createdMs(dir: string): number | null {
  try {
    const st = statSync(dir);
    return Math.round(Math.min(st.ctimeMs, st.mtimeMs));
  } catch {
    return null;
  }
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
