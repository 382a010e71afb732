import { readJobUsage, type JobUsage, type RunningJob } from "./job-cgroups.js";

/** A job's post-mortem, left on the node by the epilog (JSON) and summed per job at the roots. */
export interface JobReport {
  readonly job_id: string;
  readonly node: string;
  readonly user: string;
  readonly partition: string;
  readonly account: string;
  readonly started_at: string;
  readonly ended_at: string;
  readonly duration_s: number;
  readonly exit_code: string | null;
  /** null when the job had no cgroup to read (Slurm without cgroup plugins). */
  readonly cpu_seconds: number | null;
  readonly cpu_user_seconds: number | null;
  readonly cpu_system_seconds: number | null;
  readonly cpu_avg_cores: number | null;
  readonly cpu_peak_cores: number | null;
  readonly memory_avg_bytes: number | null;
  readonly memory_peak_bytes: number | null;
  readonly io_read_bytes: number | null;
  readonly io_written_bytes: number | null;
  readonly samples: number;
}

interface Tracked {
  readonly job: RunningJob;
  last: JobUsage | null;
  lastAtMs: number;
  samples: number;
  memorySum: number;
  memoryPeak: number;
  peakCores: number;
}

/**
 * The jobs running on this node, registered by the prolog (`banyan job start`) and ended by the
 * epilog; each tick the job source reads their cgroups through `sample`, which also keeps the
 * averages and peaks the report needs.
 */
export class JobRegistry {
  private readonly jobs = new Map<string, Tracked>();

  constructor(
    readonly node: string,
    private readonly cgroupRoot: string,
  ) {}

  start(job: RunningJob): void {
    if (!this.jobs.has(job.jobId)) this.jobs.set(job.jobId, { job, last: null, lastAtMs: 0, samples: 0, memorySum: 0, memoryPeak: 0, peakCores: 0 });
  }

  running(): RunningJob[] {
    return [...this.jobs.values()].map((t) => t.job);
  }

  has(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  /** Reads a job's cgroup now and folds it into its averages and peaks. */
  sample(jobId: string, nowMs = Date.now()): JobUsage | null {
    const t = this.jobs.get(jobId);
    if (t === undefined) return null;
    const u = readJobUsage(this.cgroupRoot, t.job, this.node);
    if (u === null) return null;
    if (t.last !== null && nowMs > t.lastAtMs) t.peakCores = Math.max(t.peakCores, (u.cpuSeconds - t.last.cpuSeconds) / ((nowMs - t.lastAtMs) / 1000));
    t.samples++;
    t.memorySum += u.memoryBytes;
    t.memoryPeak = Math.max(t.memoryPeak, u.memoryPeakBytes ?? 0, u.memoryBytes);
    t.last = u;
    t.lastAtMs = nowMs;
    return u;
  }

  /** Ends a job: its last reading, then the report. Null for a job this node never saw. */
  end(jobId: string, exitCode: string | null, nowMs = Date.now()): JobReport | null {
    const t = this.jobs.get(jobId);
    if (t === undefined) return null;
    this.sample(jobId, nowMs);
    this.jobs.delete(jobId);
    const u = t.last;
    const durationS = (nowMs - t.job.startedAtMs) / 1000;
    return {
      job_id: jobId,
      node: this.node,
      user: t.job.user,
      partition: t.job.partition,
      account: t.job.account,
      started_at: new Date(t.job.startedAtMs).toISOString(),
      ended_at: new Date(nowMs).toISOString(),
      duration_s: durationS,
      exit_code: exitCode,
      cpu_seconds: u?.cpuSeconds ?? null,
      cpu_user_seconds: u?.userSeconds ?? null,
      cpu_system_seconds: u?.systemSeconds ?? null,
      cpu_avg_cores: u && durationS > 0 ? u.cpuSeconds / durationS : null,
      cpu_peak_cores: u ? t.peakCores : null,
      memory_avg_bytes: t.samples > 0 ? t.memorySum / t.samples : null,
      memory_peak_bytes: u ? t.memoryPeak : null,
      io_read_bytes: u?.ioReadBytes ?? null,
      io_written_bytes: u?.ioWrittenBytes ?? null,
      samples: t.samples,
    };
  }
}
