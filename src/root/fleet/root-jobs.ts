import type { OriginState } from "../ingest/origin-state.js";
import type { RootStore } from "../ingest/root-store.js";
import type { JobPart, NodePart } from "./job-card.js";

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
  /**
   * The cgroup accounting summed over the job's nodes: null (unknown, never 0) when a node of the job
   * sends none (its cgroup was not found: `unaccounted_nodes`), since a part would read as a whole.
   */
  cpu_seconds: number | null;
  memory_bytes: number | null;
  /** The largest peak of any one node; null when no node said one. */
  memory_peak_bytes: number | null;
  io_read_bytes: number | null;
  io_written_bytes: number | null;
  /** Nodes of the job that send no cgroup accounting for it (banyan_job_cpu_seconds_total). */
  unaccounted_nodes: string[];
  /** GPUs of the job on its nodes (banyan_job_gpu_info), their mean utilisation now and memory used. */
  gpus: number;
  gpu_utilization_percent: number | null;
  gpu_memory_used_bytes: number;
  /** CPUs allocated on its nodes together, where they said (banyan_job_cpus_allocated); 0 when none did. */
  cpus_allocated: number;
  /** Its time limit and all its nodes as Slurm said (banyan_job_time_limit_seconds, banyan_job_nodes); null when no node said. */
  time_limit_s: number | null;
  nodes_expected: number | null;
  nodelist: string | null;
}

/** A node's part of a job while the root folds its series. */
type NodeFold = { -readonly [K in keyof NodePart]: NodePart[K] } & { gpuMap: Map<string, { gpu: string; busy_seconds: number | null; memory_peak_bytes: number | null }>; energy: Record<string, number> };

const KEEP_MS = 24 * 3_600_000;
const SUMS: Record<string, "cpu_seconds" | "memory_bytes" | "io_read_bytes" | "io_written_bytes" | "gpu_memory_used_bytes" | "cpus_allocated"> = {
  banyan_job_cpu_seconds_total: "cpu_seconds",
  banyan_job_memory_bytes: "memory_bytes",
  banyan_job_io_read_bytes_total: "io_read_bytes",
  banyan_job_io_written_bytes_total: "io_written_bytes",
  banyan_job_gpu_memory_used_bytes: "gpu_memory_used_bytes",
  banyan_job_cpus_allocated: "cpus_allocated",
};

/**
 * Per-job aggregates at a root (/api/v1/jobs/<id>): CPU seconds, memory and I/O summed over the
 * job's nodes (their banyan_job_* series; unknown when a node has no accounting for it), the largest memory peak, GPU utilisation weighted by
 * each node's GPU count, and who and where. Refreshed
 * every few seconds from the nodes that are up; a job that ended keeps its last figures for a day.
 */
export class RootJobs {
  private readonly jobs = new Map<string, JobAggregate>();
  /** Each job's nodes as their series say (the report card's parts), kept as long as the job. */
  private readonly detail = new Map<string, readonly NodePart[]>();
  private timer: NodeJS.Timeout | null = null;
  private refreshedMs = -Infinity;
  /** Told when a job first shows at this root, and when it stops running (its last figures). */
  private readonly listeners: ((change: "start" | "end", job: JobAggregate) => void)[] = [];

  constructor(
    private readonly store: RootStore,
    private readonly rootName = "",
  ) {}

  /** Tells `f` when a job first shows at this root, and when it stops running (its last figures). */
  onChange(f: (change: "start" | "end", job: JobAggregate) => void): void {
    this.listeners.push(f);
  }

  private tell(change: "start" | "end", job: JobAggregate): void {
    for (const f of this.listeners) f(change, job);
  }

  /** Each node's part of a job as last refreshed (no refresh: what a listener told of a change reads). */
  nodesOf(jobId: string): readonly NodePart[] {
    return this.detail.get(jobId) ?? [];
  }

  /** What this root holds of a job, for its report card: its figures and each node's. */
  part(jobId: string, notBeforeMs = Infinity): JobPart | undefined {
    const a = this.get(jobId, notBeforeMs);
    if (a === undefined) return undefined;
    return {
      job_id: a.job_id,
      user: a.user,
      account: a.account,
      partition: a.partition,
      running: a.running,
      first_seen: a.first_seen,
      last_seen: a.last_seen,
      time_limit_s: a.time_limit_s,
      nodes_expected: a.nodes_expected,
      nodelist: a.nodelist,
      nodes: this.detail.get(jobId) ?? [],
      roots: [this.rootName],
    };
  }

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
    const freshDetail = new Map<string, NodePart[]>();
    // Per job: Σ(node's mean utilisation × its GPUs) and Σ GPUs of the nodes that report one.
    const gpuWeighted = new Map<string, { sum: number; gpus: number }>();
    // Every origin every refresh: only a node with banyan_job_* series costs more than a glance.
    for (const st of this.store.originStates) {
      if (st.up && st.jobSeries.size > 0) this.foldNode(st.name, st, fresh, freshDetail, gpuWeighted, now);
    }
    for (const [jobId, w] of gpuWeighted) fresh.get(jobId)!.gpu_utilization_percent = w.sum / w.gpus;
    for (const a of fresh.values()) {
      if (a.unaccounted_nodes.length === 0) continue;
      a.unaccounted_nodes.sort();
      a.cpu_seconds = a.memory_bytes = a.io_read_bytes = a.io_written_bytes = null;
    }
    for (const [id, old] of this.jobs) {
      if (fresh.has(id)) continue;
      if (now - Date.parse(old.last_seen) > KEEP_MS) {
        this.jobs.delete(id);
        this.detail.delete(id);
      }
      // Its nodes are up here and its series left: it ended (its nodes gone silent say nothing of the job).
      else if (old.running && old.nodes.some((n) => this.store.origin(n)?.up === true)) {
        old.running = false;
        this.tell("end", old);
      }
    }
    for (const [id, a] of fresh) {
      a.nodes.sort();
      const before = this.jobs.get(id);
      this.jobs.set(id, a);
      this.detail.set(id, freshDetail.get(id) ?? []);
      if (before === undefined || !before.running) this.tell("start", a);
    }
  }

  /** Adds one node's banyan_job_* series to the aggregates of their jobs. */
  private foldNode(name: string, st: OriginState, fresh: Map<string, JobAggregate>, freshDetail: Map<string, NodePart[]>, gpuWeighted: Map<string, { sum: number; gpus: number }>, now: number): void {
    const folds = new Map<string, NodeFold>();
    const nodeGpus = new Map<string, number>();
    const nodeUtil = new Map<string, number>();
    // The jobs of this node, and whether it accounts for each (its cgroup was found).
    const accounted = new Map<string, boolean>();
    for (const id of st.jobSeries) {
      const def = st.decoded.def(id);
      if (def === undefined) continue;
      const label = (k: string): string => def.labels.find(([n]) => n === k)?.[1] ?? "";
      const jobId = label("job_id");
      if (jobId === "") continue;
      let a = fresh.get(jobId);
      if (a === undefined) fresh.set(jobId, (a = newAggregate(jobId, label("user"), label("partition"), this.jobs.get(jobId)?.first_seen, now)));
      if (!a.nodes.includes(name)) a.nodes.push(name);
      if (def.name === "banyan_job_cpu_seconds_total") accounted.set(jobId, true);
      else if (!accounted.has(jobId)) accounted.set(jobId, false);
      const v = st.value(id);
      if (!Number.isFinite(v)) continue;
      let f = folds.get(jobId);
      if (f === undefined) folds.set(jobId, (f = newFold(name)));
      foldSeries(f, a, def.name, label, v);
      if (def.name === "banyan_job_info") a.account = label("account");
      else if (def.name === "banyan_job_memory_peak_bytes") a.memory_peak_bytes = Math.max(a.memory_peak_bytes ?? 0, v);
      else if (def.name === "banyan_job_gpu_info") {
        a.gpus++;
        nodeGpus.set(jobId, (nodeGpus.get(jobId) ?? 0) + 1);
      } else if (def.name === "banyan_job_gpu_utilization_percent") nodeUtil.set(jobId, v);
      else {
        const key = SUMS[def.name];
        if (key !== undefined) a[key] = (a[key] ?? 0) + v;
      }
    }
    for (const [jobId, yes] of accounted) if (!yes) fresh.get(jobId)!.unaccounted_nodes.push(name);
    for (const [jobId, f] of folds) {
      const { gpuMap, energy, ...part } = f;
      let list = freshDetail.get(jobId);
      if (list === undefined) freshDetail.set(jobId, (list = []));
      list.push({ ...part, gpus: [...gpuMap.values()], energy_joules: energy });
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
    memory_peak_bytes: null,
    io_read_bytes: 0,
    io_written_bytes: 0,
    unaccounted_nodes: [],
    gpus: 0,
    gpu_utilization_percent: null,
    gpu_memory_used_bytes: 0,
    cpus_allocated: 0,
    time_limit_s: null,
    nodes_expected: null,
    nodelist: null,
  };
}

function newFold(node: string): NodeFold {
  return { node, started_at_s: null, cpu_seconds: null, cpus_allocated: null, memory_peak_bytes: null, memory_limit_bytes: null, io_read_bytes: null, io_written_bytes: null, gpus: [], energy_joules: {}, gpuMap: new Map(), energy: {} };
}

/** One banyan_job_* series into its node's part of the job (and the job-wide facts Slurm gave). */
function foldSeries(f: NodeFold, a: JobAggregate, name: string, label: (k: string) => string, v: number): void {
  const gpu = (): { gpu: string; busy_seconds: number | null; memory_peak_bytes: number | null } => {
    const g = label("gpu");
    let e = f.gpuMap.get(g);
    if (e === undefined) f.gpuMap.set(g, (e = { gpu: g, busy_seconds: null, memory_peak_bytes: null }));
    return e;
  };
  switch (name) {
    case "banyan_job_start_time_seconds":
      f.started_at_s = v;
      break;
    case "banyan_job_cpu_seconds_total":
      f.cpu_seconds = v;
      break;
    case "banyan_job_cpus_allocated":
      f.cpus_allocated = v;
      break;
    case "banyan_job_memory_peak_bytes":
      f.memory_peak_bytes = v;
      break;
    case "banyan_job_memory_limit_bytes":
      f.memory_limit_bytes = v;
      break;
    case "banyan_job_io_read_bytes_total":
      f.io_read_bytes = v;
      break;
    case "banyan_job_io_written_bytes_total":
      f.io_written_bytes = v;
      break;
    case "banyan_job_gpu_info":
      gpu();
      break;
    case "banyan_job_gpu_busy_seconds_total":
      gpu().busy_seconds = v;
      break;
    case "banyan_job_gpu_memory_peak_bytes":
      gpu().memory_peak_bytes = v;
      break;
    case "banyan_job_energy_joules_total":
      f.energy[label("source") || "node"] = (f.energy[label("source") || "node"] ?? 0) + v;
      break;
    case "banyan_job_time_limit_seconds":
      a.time_limit_s = v;
      break;
    case "banyan_job_nodes":
      a.nodes_expected = v;
      if (label("nodelist") !== "") a.nodelist = label("nodelist");
      break;
  }
}
