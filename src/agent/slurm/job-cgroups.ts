import { readFileSync } from "node:fs";
import { join } from "node:path";

/** A job running on this node, as the prolog registered it. */
export interface RunningJob {
  readonly jobId: string;
  readonly user: string;
  readonly uid: string;
  readonly partition: string;
  readonly account: string;
  /** The job's cgroup directory when the prolog knew it; else found by Slurm's layout. */
  readonly cgroupPath?: string;
  /** GPU indices of the job on this node (SLURM_JOB_GPUS), as nvidia-smi and dcgm-exporter number them. */
  readonly gpus?: readonly string[];
  /** CPUs allocated on this node, when Slurm said (the usage report's efficiency). */
  readonly cpus?: number;
  /** The job's nodes, all of them (SLURM_JOB_NUM_NODES), and their hostlist, when Slurm said. */
  readonly nodes?: number;
  readonly nodelist?: string;
  /** Its time limit in seconds, when Slurm said (scontrol's TimeLimit; none for UNLIMITED). */
  readonly timeLimitS?: number;
  /** Its SLUID (Slurm 26.05+): the name of its cgroup v2 directory unless CgroupJobIdPaths=yes. */
  readonly sluid?: string;
  readonly startedAtMs: number;
}

/** What a job has used so far, from its cgroup. Counters since the job started. */
export interface JobUsage {
  readonly cpuSeconds: number;
  readonly userSeconds: number | null;
  readonly systemSeconds: number | null;
  readonly memoryBytes: number;
  readonly memoryPeakBytes: number | null;
  /** The job's memory limit (its allocation, as Slurm set the cgroup); null when unlimited. */
  readonly memoryLimitBytes: number | null;
  readonly ioReadBytes: number;
  readonly ioWrittenBytes: number;
  readonly version: 1 | 2;
}

const read = (...p: string[]): string | null => {
  try {
    return readFileSync(join(...p), "utf8");
  } catch {
    return null;
  }
};
const num = (s: string | null): number | null => (s === null || s.trim() === "" || s.trim() === "max" ? null : Number(s.trim()));
/** A cgroup memory limit; v1's "no limit" is a number near 2^63. */
const limit = (s: string | null): number | null => {
  const n = num(s);
  return n === null || !Number.isFinite(n) || n >= 2 ** 60 ? null : n;
};
/** USER_HZ, for cpuacct.stat. */
const USER_HZ = 100;

/**
 * A job's usage from cgroup v2 (`<root>/system.slice/slurmstepd.scope/job_<id>`, or `/<SLUID>` as
 * Slurm 26.05 names it: cpu.stat,
 * memory.current, memory.peak, io.stat) or cgroup v1 (`<root>/<controller>/slurm_<node>/uid_<uid>/job_<id>`
 * as Slurm 22.05 lays it out, or `…/slurm/uid_<uid>/job_<id>` as older releases do:
 * cpuacct.usage and cpuacct.stat, memory.usage_in_bytes and memory.max_usage_in_bytes,
 * blkio.throttle.io_service_bytes). Null when the job has no cgroup (Slurm without cgroup plugins).
 */
export function readJobUsage(cgroupRoot: string, job: RunningJob, node = ""): JobUsage | null {
  const scope = join(cgroupRoot, "system.slice/slurmstepd.scope");
  let v2 = job.cgroupPath ?? join(scope, `job_${job.jobId}`);
  let cpuStat = read(v2, "cpu.stat");
  // Slurm 26.05 names the job's directory by its SLUID unless CgroupJobIdPaths=yes.
  if (cpuStat === null && job.cgroupPath === undefined && job.sluid !== undefined) {
    v2 = join(scope, job.sluid);
    cpuStat = read(v2, "cpu.stat");
  }
  if (cpuStat !== null) {
    const kv = new Map(cpuStat.split("\n").map((l) => l.split(/\s+/) as [string, string]));
    let rd = 0;
    let wr = 0;
    for (const line of (read(v2, "io.stat") ?? "").split("\n")) {
      rd += Number(/rbytes=(\d+)/.exec(line)?.[1] ?? 0);
      wr += Number(/wbytes=(\d+)/.exec(line)?.[1] ?? 0);
    }
    return {
      cpuSeconds: Number(kv.get("usage_usec") ?? 0) / 1e6,
      userSeconds: kv.has("user_usec") ? Number(kv.get("user_usec")) / 1e6 : null,
      systemSeconds: kv.has("system_usec") ? Number(kv.get("system_usec")) / 1e6 : null,
      memoryBytes: num(read(v2, "memory.current")) ?? 0,
      memoryPeakBytes: num(read(v2, "memory.peak")),
      memoryLimitBytes: limit(read(v2, "memory.max")),
      ioReadBytes: rd,
      ioWrittenBytes: wr,
      version: 2,
    };
  }
  let slurmDir = `slurm_${node}`;
  let usage = num(read(cgroupRoot, "cpuacct", slurmDir, `uid_${job.uid}`, `job_${job.jobId}`, "cpuacct.usage"));
  if (usage === null) {
    slurmDir = "slurm";
    usage = num(read(cgroupRoot, "cpuacct", slurmDir, `uid_${job.uid}`, `job_${job.jobId}`, "cpuacct.usage"));
  }
  if (usage === null) return null;
  const v1 = (controller: string): string => join(cgroupRoot, controller, slurmDir, `uid_${job.uid}`, `job_${job.jobId}`);
  const stat = read(v1("cpuacct"), "cpuacct.stat") ?? "";
  const user = /user (\d+)/.exec(stat);
  const sys = /system (\d+)/.exec(stat);
  let rd = 0;
  let wr = 0;
  for (const line of (read(v1("blkio"), "blkio.throttle.io_service_bytes") ?? "").split("\n")) {
    const m = /^\d+:\d+ (Read|Write) (\d+)/.exec(line);
    if (m?.[1] === "Read") rd += Number(m[2]);
    else if (m?.[1] === "Write") wr += Number(m[2]);
  }
  return {
    cpuSeconds: usage / 1e9,
    userSeconds: user ? Number(user[1]) / USER_HZ : null,
    systemSeconds: sys ? Number(sys[1]) / USER_HZ : null,
    memoryBytes: num(read(v1("memory"), "memory.usage_in_bytes")) ?? 0,
    memoryPeakBytes: num(read(v1("memory"), "memory.max_usage_in_bytes")),
    memoryLimitBytes: limit(read(v1("memory"), "memory.limit_in_bytes")),
    ioReadBytes: rd,
    ioWrittenBytes: wr,
    version: 1,
  };
}
