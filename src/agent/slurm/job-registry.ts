import type { GpuReading, GpuReadings } from "../gpu-readings.js";
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
  /** CPUs Slurm allocated the job on this node; null when it did not say. */
  readonly cpus_allocated: number | null;
  readonly memory_avg_bytes: number | null;
  readonly memory_peak_bytes: number | null;
  /** The job's memory limit on this node (its cgroup's: what Slurm allocated); null when unlimited. */
  readonly memory_allocated_bytes: number | null;
  readonly io_read_bytes: number | null;
  readonly io_written_bytes: number | null;
  /** The job's GPUs on this node (SLURM_JOB_GPUS); the figures below are null without a GPU source. */
  readonly gpus: readonly string[];
  /** Mean over the job's GPUs, averaged over its samples; the peak is the busiest GPU's busiest sample. */
  readonly gpu_util_avg_percent: number | null;
  readonly gpu_util_peak_percent: number | null;
  /** Framebuffer used by the job's GPUs together, at its largest. */
  readonly gpu_memory_peak_bytes: number | null;
  /** The job's GPUs here that were never busy (null without a GPU source). */
  readonly gpus_idle: readonly string[] | null;
  /** Energy attributed to the job here, by source (only the sources this node measures). */
  readonly energy_joules: Readonly<Record<string, number>>;
  readonly samples: number;
}

/** What a job's GPUs do now: mean utilisation and the memory they use together. */
export interface JobGpuNow {
  readonly utilPercent: number | null;
  readonly memoryUsedBytes: number | null;
}

const MIB = 1024 * 1024;

interface Tracked {
  job: RunningJob;
  last: JobUsage | null;
  lastAtMs: number;
  samples: number;
  memorySum: number;
  memoryPeak: number;
  peakCores: number;
  gpuNow: JobGpuNow | null;
  gpuSamples: number;
  gpuUtilSum: number;
  gpuUtilPeak: number | null;
  gpuMemoryPeak: number | null;
  /** Per GPU (by index): seconds busy (utilisation × time, integrated at each sample) and framebuffer peak. */
  readonly perGpu: Map<string, { busySeconds: number; memoryPeakBytes: number }>;
  /** When the GPUs were last read, to integrate their utilisation over the time since. */
  gpuAtMs: number;
  /** Told once (see noCgroupAfterMs) that no cgroup was found for it. */
  warned: boolean;
}

/** A job without a cgroup this long after its start is warned about once (its step's cgroup may come after the prolog). */
const NO_CGROUP_WARN_AFTER_MS = 30_000;

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
    /** The node's GPU sources (nvidia-smi, dcgm-exporter scrapes); asked in order. */
    private readonly gpuSources: readonly GpuReadings[] = [],
    /** Told once per job whose cgroup is not found (30 s after its start, or at its end): its accounting is unknown. */
    private readonly onNoCgroup: (job: RunningJob, cgroupRoot: string) => void = () => {},
  ) {}

  start(job: RunningJob): void {
    if (!this.jobs.has(job.jobId)) {
      this.jobs.set(job.jobId, { job, last: null, lastAtMs: 0, samples: 0, memorySum: 0, memoryPeak: 0, peakCores: 0, gpuNow: null, gpuSamples: 0, gpuUtilSum: 0, gpuUtilPeak: null, gpuMemoryPeak: null, perGpu: new Map(), gpuAtMs: 0, warned: false });
    }
  }

  /** Where a job's energy so far is read at its end (the job source's attribution). */
  energyOf: (jobId: string) => Readonly<Record<string, number>> = () => ({});

  /** Adds what Slurm said of a running job after its start (its time limit, its nodes). */
  update(jobId: string, facts: Pick<RunningJob, "timeLimitS" | "nodes" | "nodelist">): void {
    const t = this.jobs.get(jobId);
    // What the hooks said stands; Slurm fills in the rest.
    if (t !== undefined) t.job = { ...facts, ...t.job };
  }

  /** Each GPU of the job: seconds busy so far and its framebuffer peak (empty without a GPU source). */
  gpuDetail(jobId: string): ReadonlyMap<string, { readonly busySeconds: number; readonly memoryPeakBytes: number }> {
    return this.jobs.get(jobId)?.perGpu ?? new Map();
  }

  running(): RunningJob[] {
    return [...this.jobs.values()].map((t) => t.job);
  }

  has(jobId: string): boolean {
    return this.jobs.has(jobId);
  }

  /** The job's last cgroup reading (null before the first): what it used when its cgroup went away at its end. */
  lastUsage(jobId: string): JobUsage | null {
    return this.jobs.get(jobId)?.last ?? null;
  }

  /** What the job's GPUs did at its last sample; null when it has none or no source knows them. */
  gpu(jobId: string): JobGpuNow | null {
    return this.jobs.get(jobId)?.gpuNow ?? null;
  }

  /** Reads a job's cgroup and GPUs now and folds them into its averages and peaks. */
  sample(jobId: string, nowMs = Date.now()): JobUsage | null {
    const t = this.jobs.get(jobId);
    if (t === undefined) return null;
    this.sampleGpus(t, nowMs);
    const u = readJobUsage(this.cgroupRoot, t.job, this.node);
    if (u === null) {
      if (t.last === null && !t.warned && nowMs - t.job.startedAtMs >= NO_CGROUP_WARN_AFTER_MS) this.warnNoCgroup(t);
      return null;
    }
    if (t.last !== null && nowMs > t.lastAtMs) t.peakCores = Math.max(t.peakCores, (u.cpuSeconds - t.last.cpuSeconds) / ((nowMs - t.lastAtMs) / 1000));
    t.samples++;
    t.memorySum += u.memoryBytes;
    t.memoryPeak = Math.max(t.memoryPeak, u.memoryPeakBytes ?? 0, u.memoryBytes);
    t.last = u;
    t.lastAtMs = nowMs;
    return u;
  }

  private warnNoCgroup(t: Tracked): void {
    t.warned = true;
    this.onNoCgroup(t.job, this.cgroupRoot);
  }

  private sampleGpus(t: Tracked, nowMs: number): void {
    const gpus = t.job.gpus ?? [];
    if (gpus.length === 0 || this.gpuSources.length === 0) return;
    let utilSum = 0;
    let utilN = 0;
    let memory: number | null = null;
    // The utilisation read now stands for the time since the last read (at most 10 s: a stalled agent's gap is not invented).
    const dtS = t.gpuAtMs > 0 && nowMs > t.gpuAtMs ? Math.min(10, (nowMs - t.gpuAtMs) / 1000) : 0;
    t.gpuAtMs = nowMs;
    for (const gpu of gpus) {
      const r = this.reading(gpu);
      let g = t.perGpu.get(gpu);
      if (g === undefined) t.perGpu.set(gpu, (g = { busySeconds: 0, memoryPeakBytes: 0 }));
      if (r?.utilPercent != null) {
        utilSum += r.utilPercent;
        utilN++;
        t.gpuUtilPeak = Math.max(t.gpuUtilPeak ?? 0, r.utilPercent);
        g.busySeconds += (r.utilPercent / 100) * dtS;
      }
      if (r?.memoryUsedMiB != null) {
        memory = (memory ?? 0) + r.memoryUsedMiB * MIB;
        g.memoryPeakBytes = Math.max(g.memoryPeakBytes, r.memoryUsedMiB * MIB);
      }
    }
    const util = utilN > 0 ? utilSum / utilN : null;
    if (util !== null) {
      t.gpuSamples++;
      t.gpuUtilSum += util;
    }
    if (memory !== null) t.gpuMemoryPeak = Math.max(t.gpuMemoryPeak ?? 0, memory);
    t.gpuNow = util === null && memory === null ? null : { utilPercent: util, memoryUsedBytes: memory };
  }

  /** A GPU's energy so far (J) as its source measures it; null when none does. */
  gpuEnergy(gpu: string): number | null {
    return this.reading(gpu)?.energyJoules ?? null;
  }

  private reading(gpu: string): GpuReading | undefined {
    for (const s of this.gpuSources) {
      const r = s.gpuReading(gpu);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  /** Ends a job: its last reading, then the report. Null for a job this node never saw. */
  end(jobId: string, exitCode: string | null, nowMs = Date.now()): JobReport | null {
    const t = this.jobs.get(jobId);
    if (t === undefined) return null;
    this.sample(jobId, nowMs);
    this.jobs.delete(jobId);
    const gpus = t.job.gpus ?? [];
    const idle = gpus.length > 0 && t.perGpu.size > 0 ? gpus.filter((g) => (t.perGpu.get(g)?.busySeconds ?? 0) === 0) : null;
    if (t.last === null && !t.warned) this.warnNoCgroup(t);
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
      cpus_allocated: t.job.cpus ?? null,
      memory_avg_bytes: t.samples > 0 ? t.memorySum / t.samples : null,
      memory_peak_bytes: u ? t.memoryPeak : null,
      memory_allocated_bytes: u?.memoryLimitBytes ?? null,
      io_read_bytes: u?.ioReadBytes ?? null,
      io_written_bytes: u?.ioWrittenBytes ?? null,
      gpus: t.job.gpus ?? [],
      gpu_util_avg_percent: t.gpuSamples > 0 ? t.gpuUtilSum / t.gpuSamples : null,
      gpu_util_peak_percent: t.gpuUtilPeak,
      gpu_memory_peak_bytes: t.gpuMemoryPeak,
      gpus_idle: idle,
      energy_joules: { ...this.energyOf(jobId) },
      samples: t.samples,
    };
  }
}
