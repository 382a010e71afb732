import type { RootStore } from "./root-store.js";

/** One Slurm job as this root sees it across its nodes, kept for a while after it ends. */
export interface JobAggregate {
  job_id: string;
  user: string;
  partition: string;
  account: string;
  running: boolean;
  nodes: string[];
  first_seen: string;
  last_seen: string;
  cpu_seconds: number;
  memory_bytes: number;
  /** The largest peak of any one node. */
  memory_peak_bytes: number;
  io_read_bytes: number;
  io_written_bytes: number;
}

const KEEP_MS = 24 * 3_600_000;
const SUMS: Record<string, keyof JobAggregate> = {
  banyan_job_cpu_seconds_total: "cpu_seconds",
  banyan_job_memory_bytes: "memory_bytes",
  banyan_job_io_read_bytes_total: "io_read_bytes",
  banyan_job_io_written_bytes_total: "io_written_bytes",
};

/**
 * Per-job aggregates at a root (/api/v1/jobs/<id>): CPU seconds, memory and I/O summed over the
 * job's nodes (their banyan_job_* series), the largest memory peak, and who and where. Refreshed
 * every few seconds from the nodes that are up; a job that ended keeps its last figures for a day.
 */
export class RootJobs {
  private readonly jobs = new Map<string, JobAggregate>();
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly store: RootStore) {}

  start(everyMs = 2000): void {
    this.timer = setInterval(() => this.refresh(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  get(jobId: string): JobAggregate | undefined {
    this.refresh();
    return this.jobs.get(jobId);
  }

  list(): JobAggregate[] {
    this.refresh();
    return [...this.jobs.values()];
  }

  refresh(now = Date.now()): void {
    const fresh = new Map<string, JobAggregate>();
    for (const name of this.store.originNames) {
      const st = this.store.origin(name)!;
      if (!st.up) continue;
      for (const id of st.jobSeries) {
        const def = st.decoded.def(id);
        if (def === undefined) continue;
        const label = (k: string): string => def.labels.find(([n]) => n === k)?.[1] ?? "";
        const jobId = label("job_id");
        if (jobId === "") continue;
        let a = fresh.get(jobId);
        if (a === undefined) {
          const old = this.jobs.get(jobId);
          a = { job_id: jobId, user: label("user"), partition: label("partition"), account: "", running: true, nodes: [], first_seen: old?.first_seen ?? new Date(now).toISOString(), last_seen: new Date(now).toISOString(), cpu_seconds: 0, memory_bytes: 0, memory_peak_bytes: 0, io_read_bytes: 0, io_written_bytes: 0 };
          fresh.set(jobId, a);
        }
        if (!a.nodes.includes(name)) a.nodes.push(name);
        const v = st.value(id);
        if (!Number.isFinite(v)) continue;
        if (def.name === "banyan_job_info") a.account = label("account");
        else if (def.name === "banyan_job_memory_peak_bytes") a.memory_peak_bytes = Math.max(a.memory_peak_bytes, v);
        else {
          const key = SUMS[def.name];
          if (key !== undefined) (a[key] as number) += v;
        }
      }
    }
    for (const [id, old] of this.jobs) {
      if (fresh.has(id)) continue;
      if (now - Date.parse(old.last_seen) > KEEP_MS) this.jobs.delete(id);
      else old.running = false;
    }
    for (const [id, a] of fresh) {
      a.nodes.sort();
      this.jobs.set(id, a);
    }
  }
}
