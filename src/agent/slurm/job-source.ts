import { SeriesWriter } from "../collectors/series-writer.js";
import type { SampleTarget, Source } from "../source.js";
import type { JobRegistry } from "./job-registry.js";

/**
 * Each running job's cgroup accounting as series with job_id, user and partition labels, and
 * banyan_job_info{job_id,user,partition,account} 1 while it runs. When the job ends its series end.
 */
export class JobSource implements Source {
  readonly name = "slurm-jobs";
  private writer: SeriesWriter | null = null;

  constructor(private readonly registry: JobRegistry) {}

  collect(target: SampleTarget, nowMs: number): void {
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    for (const job of this.registry.running()) {
      const l = { job_id: job.jobId, user: job.user, partition: job.partition };
      w.gauge("banyan_job_info", { ...l, account: job.account }, 1, "A Slurm job running on this node.");
      const u = this.registry.sample(job.jobId, nowMs);
      if (u === null) continue;
      w.counter("banyan_job_cpu_seconds_total", l, u.cpuSeconds, "CPU time used by the job's processes on this node.");
      if (u.userSeconds !== null) w.counter("banyan_job_cpu_user_seconds_total", l, u.userSeconds, "CPU time in user mode.");
      if (u.systemSeconds !== null) w.counter("banyan_job_cpu_system_seconds_total", l, u.systemSeconds, "CPU time in kernel mode.");
      w.gauge("banyan_job_memory_bytes", l, u.memoryBytes, "Memory used by the job on this node.");
      if (u.memoryPeakBytes !== null) w.gauge("banyan_job_memory_peak_bytes", l, u.memoryPeakBytes, "Peak memory of the job on this node.");
      w.counter("banyan_job_io_read_bytes_total", l, u.ioReadBytes, "Bytes the job read from block devices.");
      w.counter("banyan_job_io_written_bytes_total", l, u.ioWrittenBytes, "Bytes the job wrote to block devices.");
    }
    w.end();
  }
}
