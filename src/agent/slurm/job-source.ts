import { SeriesWriter } from "../collectors/series-writer.js";
import type { SampleTarget, Source } from "../../node/source.js";
import type { JobRegistry } from "./job-registry.js";
import type { JobUsage, RunningJob } from "./job-cgroups.js";
import type { JobEnergy, NodeEnergy } from "./job-energy.js";

/**
 * Each running job's cgroup accounting as series with job_id, user and partition labels, and
 * banyan_job_info{job_id,user,partition,account} 1 while it runs. When the job ends its series end.
 */
export class JobSource implements Source {
  readonly name = "slurm-jobs";
  private writer: SeriesWriter | null = null;

  /** Jobs energy was attributed to last tick (forgotten by the attribution once they are gone). */
  private energyJobs = new Set<string>();

  constructor(
    private readonly registry: JobRegistry,
    /** What the node measures of its energy now, and the attribution of it to jobs; null: no energy per job. */
    private readonly energy: { readonly meter: (gpus: readonly string[]) => NodeEnergy; readonly share: JobEnergy } | null = null,
  ) {}

  collect(target: SampleTarget, nowMs: number): void {
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    const running = this.registry.running();
    // Slurm removes a job's cgroup when it ends, before its epilog: until then its last reading
    // stands (its counters end there), so the root never sees a job that was accounted turn unknown.
    const usage = running.map((job) => this.registry.sample(job.jobId, nowMs) ?? this.registry.lastUsage(job.jobId));
    if (this.energy !== null) this.attribute(running, usage, nowMs);
    for (const [k, job] of running.entries()) {
      const l = { job_id: job.jobId, user: job.user, partition: job.partition };
      w.gauge("banyan_job_info", { ...l, account: job.account }, 1, "A Slurm job running on this node.");
      const u = usage[k]!;
      if (this.energy !== null) {
        for (const [source, joules] of Object.entries(this.energy.share.of(job.jobId))) {
          w.counter("banyan_job_energy_joules_total", { ...l, source }, joules, "Energy attributed to the job on this node, by source: its GPUs (gpu), its share of CPU-package (cpu) and DRAM (dram) energy by CPU time, and of the node's remainder by its BMC (node).");
        }
      }
      // GPU series first: a job without a cgroup (Slurm without cgroup plugins) may still hold GPUs.
      w.gauge("banyan_job_start_time_seconds", l, job.startedAtMs / 1000, "When the job started on this node (its prolog), in seconds since the epoch.");
      if (job.timeLimitS !== undefined) w.gauge("banyan_job_time_limit_seconds", l, job.timeLimitS, "The job's time limit as Slurm has it (none when unlimited).");
      if (job.nodes !== undefined) w.gauge("banyan_job_nodes", job.nodelist !== undefined ? { ...l, nodelist: job.nodelist } : l, job.nodes, "Nodes of the job, all of them (its hostlist as a label), so a root knows what part of it it holds.");
      if (job.cpus !== undefined) w.gauge("banyan_job_cpus_allocated", l, job.cpus, "CPUs Slurm allocated the job on this node.");
      const detail = this.registry.gpuDetail(job.jobId);
      for (const gpu of job.gpus ?? []) {
        w.gauge("banyan_job_gpu_info", { ...l, gpu }, 1, "A GPU of the job (SLURM_JOB_GPUS), to join with DCGM_FI_DEV_* on instance and gpu.");
        const d = detail.get(gpu);
        if (d === undefined) continue;
        w.counter("banyan_job_gpu_busy_seconds_total", { ...l, gpu }, d.busySeconds, "Seconds the GPU was busy for the job (its utilisation integrated over time): its mean utilisation is this over the job's time.");
        w.gauge("banyan_job_gpu_memory_peak_bytes", { ...l, gpu }, d.memoryPeakBytes, "The GPU's framebuffer peak during the job.");
      }
      const g = this.registry.gpu(job.jobId);
      if (g?.utilPercent != null) w.gauge("banyan_job_gpu_utilization_percent", l, g.utilPercent, "Mean utilisation of the job's GPUs on this node (in %).");
      if (g?.memoryUsedBytes != null) w.gauge("banyan_job_gpu_memory_used_bytes", l, g.memoryUsedBytes, "Framebuffer memory used by the job's GPUs on this node.");
      if (u === null) continue;
      w.counter("banyan_job_cpu_seconds_total", l, u.cpuSeconds, "CPU time used by the job's processes on this node.");
      if (u.userSeconds !== null) w.counter("banyan_job_cpu_user_seconds_total", l, u.userSeconds, "CPU time in user mode.");
      if (u.systemSeconds !== null) w.counter("banyan_job_cpu_system_seconds_total", l, u.systemSeconds, "CPU time in kernel mode.");
      w.gauge("banyan_job_memory_bytes", l, u.memoryBytes, "Memory used by the job on this node.");
      if (u.memoryPeakBytes !== null) w.gauge("banyan_job_memory_peak_bytes", l, u.memoryPeakBytes, "Peak memory of the job on this node.");
      if (u.memoryLimitBytes !== null) w.gauge("banyan_job_memory_limit_bytes", l, u.memoryLimitBytes, "The job's memory limit on this node (its cgroup's: what Slurm allocated).");
      w.counter("banyan_job_io_read_bytes_total", l, u.ioReadBytes, "Bytes the job read from block devices.");
      w.counter("banyan_job_io_written_bytes_total", l, u.ioWrittenBytes, "Bytes the job wrote to block devices.");
    }
    w.end();
  }

  /** The node's energy since the last tick, shared among the jobs running now. */
  private attribute(running: readonly RunningJob[], usage: readonly (JobUsage | null)[], nowMs: number): void {
    const { meter, share } = this.energy!;
    const now = new Set(running.map((j) => j.jobId));
    for (const id of this.energyJobs) if (!now.has(id)) share.forget(id);
    this.energyJobs = now;
    if (running.length === 0) return;
    const loads = running.map((j, k) => ({ jobId: j.jobId, cpuSeconds: usage[k]?.cpuSeconds ?? null, gpus: j.gpus ?? [] }));
    share.tick(nowMs, meter(loads.flatMap((l) => l.gpus)), loads);
  }
}
