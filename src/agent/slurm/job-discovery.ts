import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

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
