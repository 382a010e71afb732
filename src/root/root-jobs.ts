import type { OriginState } from "./origin-state.js";
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
  /** GPUs of the job on its nodes (banyan_job_gpu_info), their mean utilisation now and memory used. */
  gpus: number;
  gpu_utilization_percent: number | null;
  gpu_memory_used_bytes: number;
  /** CPUs allocated on its nodes together, where they said (banyan_job_cpus_allocated); 0 when none did. */
  cpus_allocated: number;
}

const KEEP_MS = 24 * 3_600_000;
const SUMS: Record<string, keyof JobAggregate> = {
  banyan_job_cpu_seconds_total: "cpu_seconds",
  banyan_job_memory_bytes: "memory_bytes",
  banyan_job_io_read_bytes_total: "io_read_bytes",
  banyan_job_io_written_bytes_total: "io_written_bytes",
  banyan_job_gpu_memory_used_bytes: "gpu_memory_used_bytes",
  banyan_job_cpus_allocated: "cpus_allocated",
};

/**
 * Per-job aggregates at a root (/api/v1/jobs/<id>): CPU seconds, memory and I/O summed over the
 * job's nodes (their banyan_job_* series), the largest memory peak, GPU utilisation weighted by
 * each node's GPU count, and who and where. Refreshed
 * every few seconds from the nodes that are up; a job that ended keeps its last figures for a day.
 */
export class RootJobs {
  private readonly jobs = new Map<string, JobAggregate>();
  private timer: NodeJS.Timeout | null = null;
  private refreshedMs = -Infinity;
  /** Told when a job first shows at this root, and when it stops running (its last figures). */
  onChange: ((change: "start" | "end", job: JobAggregate) => void) | null = null;

  constructor(private readonly store: RootStore) {}

  start(everyMs = 2000): void {
    this.timer = setInterval(() => this.refresh(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A job's figures, refreshed unless they were at or after `notBeforeMs` (the job watchers of one flush share one refresh). */
  get(jobId: string, notBeforeMs = Infinity): JobAggregate | undefined {
    if (this.refreshedMs < notBeforeMs) this.refresh();
    return this.jobs.get(jobId);
  }

  list(): JobAggregate[] {
    this.refresh();
    return [...this.jobs.values()];
  }

  refresh(now = Date.now()): void {
    this.refreshedMs = now;
    const fresh = new Map<string, JobAggregate>();
    // Per job: Σ(node's mean utilisation × its GPUs) and Σ GPUs of the nodes that report one.
    const gpuWeighted = new Map<string, { sum: number; gpus: number }>();
    // Every origin every refresh: only a node with banyan_job_* series costs more than a glance.
    for (const st of this.store.originStates) {
      if (st.up && st.jobSeries.size > 0) this.foldNode(st.name, st, fresh, gpuWeighted, now);
    }
    for (const [jobId, w] of gpuWeighted) fresh.get(jobId)!.gpu_utilization_percent = w.sum / w.gpus;
    for (const [id, old] of this.jobs) {
      if (fresh.has(id)) continue;
      if (now - Date.parse(old.last_seen) > KEEP_MS) this.jobs.delete(id);
      // Its nodes are up here and its series left: it ended (its nodes gone silent say nothing of the job).
      else if (old.running && old.nodes.some((n) => this.store.origin(n)?.up === true)) {
        old.running = false;
        this.onChange?.("end", old);
      }
    }
    for (const [id, a] of fresh) {
      a.nodes.sort();
      const before = this.jobs.get(id);
      this.jobs.set(id, a);
      if (before === undefined || !before.running) this.onChange?.("start", a);
    }
  }

  /** Adds one node's banyan_job_* series to the aggregates of their jobs. */
  private foldNode(name: string, st: OriginState, fresh: Map<string, JobAggregate>, gpuWeighted: Map<string, { sum: number; gpus: number }>, now: number): void {
    const nodeGpus = new Map<string, number>();
    const nodeUtil = new Map<string, number>();
    for (const id of st.jobSeries) {
      const def = st.decoded.def(id);
      if (def === undefined) continue;
      const label = (k: string): string => def.labels.find(([n]) => n === k)?.[1] ?? "";
      const jobId = label("job_id");
      if (jobId === "") continue;
      let a = fresh.get(jobId);
      if (a === undefined) fresh.set(jobId, (a = newAggregate(jobId, label("user"), label("partition"), this.jobs.get(jobId)?.first_seen, now)));
      if (!a.nodes.includes(name)) a.nodes.push(name);
      const v = st.value(id);
      if (!Number.isFinite(v)) continue;
      if (def.name === "banyan_job_info") a.account = label("account");
      else if (def.name === "banyan_job_memory_peak_bytes") a.memory_peak_bytes = Math.max(a.memory_peak_bytes, v);
      else if (def.name === "banyan_job_gpu_info") {
        a.gpus++;
        nodeGpus.set(jobId, (nodeGpus.get(jobId) ?? 0) + 1);
      } else if (def.name === "banyan_job_gpu_utilization_percent") nodeUtil.set(jobId, v);
      else {
        const key = SUMS[def.name];
        if (key !== undefined) (a[key] as number) += v;
      }
    }
    for (const [jobId, util] of nodeUtil) {
      const w = gpuWeighted.get(jobId) ?? { sum: 0, gpus: 0 };
      const n = nodeGpus.get(jobId) ?? 1;
      w.sum += util * n;
      w.gpus += n;
      gpuWeighted.set(jobId, w);
    }
  }
}

function newAggregate(jobId: string, user: string, partition: string, firstSeen: string | undefined, now: number): JobAggregate {
  const at = new Date(now).toISOString();
  return {
    job_id: jobId,
    user,
    partition,
    account: "",
    running: true,
    nodes: [],
    first_seen: firstSeen ?? at,
    last_seen: at,
    cpu_seconds: 0,
    memory_bytes: 0,
    memory_peak_bytes: 0,
    io_read_bytes: 0,
    io_written_bytes: 0,
    gpus: 0,
    gpu_utilization_percent: null,
    gpu_memory_used_bytes: 0,
    cpus_allocated: 0,
  };
}
