import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BanyanError, Code } from "../../core/errors.js";

/** One job as the usage report counts it, from its nodes' reports or from a root's job-end log. */
export interface JobUsageRecord {
  readonly job_id: string;
  readonly user: string;
  readonly account: string;
  readonly partition: string;
  readonly ended_at: string;
  readonly node_hours: number;
  /** null: unknown (a node of the job had no cgroup accounting), never read as 0. So are memory and I/O. */
  readonly cpu_hours: number | null;
  /** CPU-hours allocated, where every node said how many CPUs it had; null otherwise. */
  readonly cpu_alloc_hours: number | null;
  readonly gpu_hours: number;
  /** GPU utilisation × GPU-hours (the weighted mean is this over gpu_hours). */
  readonly gpu_util_hours: number;
  readonly memory_peak_bytes: number | null;
  /** The largest share of its allocation a node of the job's memory peaked at (0..1+); null when no node said its allocation. */
  readonly memory_peak_share: number | null;
  readonly io_read_bytes: number | null;
  readonly io_written_bytes: number | null;
  /** GPU-hours of GPUs allocated and never busy (0 where unknown: no GPU source). */
  readonly idle_gpu_hours: number;
  /** Energy attributed to the job on its nodes; null where none was measured. */
  readonly energy_joules: number | null;
}

export type GroupBy = "user" | "account" | "partition" | "day";

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
/** A figure, or null when the record has none (unknown: never counted as 0). */
const known = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
/** Adds a known figure to a sum that stays null (unknown) once a part is. */
const plus = (sum: number | null, v: number | null): number | null => (sum === null || v === null ? null : sum + v);

/** Jobs from per-node epilog reports (`<id>.<node>.json`), summed over their nodes. */
export function jobsFromReports(reports: readonly Record<string, unknown>[]): Map<string, JobUsageRecord> {
  const byJob = new Map<string, Record<string, unknown>[]>();
  for (const r of reports) {
    const id = r["job_id"];
    if (typeof id !== "string") continue;
    let list = byJob.get(id);
    if (list === undefined) byJob.set(id, (list = []));
    list.push(r);
  }
  const out = new Map<string, JobUsageRecord>();
  for (const [id, nodes] of byJob) {
    let nodeH = 0;
    let cpuH: number | null = 0;
    let allocH: number | null = 0;
    let gpuH = 0;
    let gpuUtilH = 0;
    let peak: number | null = null;
    let share: number | null = null;
    let read: number | null = 0;
    let written: number | null = 0;
    let idleH = 0;
    let energy: number | null = null;
    let ended = "";
    for (const r of nodes) {
      const h = num(r["duration_s"]) / 3600;
      nodeH += h;
      const cpu = known(r["cpu_seconds"]);
      cpuH = plus(cpuH, cpu === null ? null : cpu / 3600);
      const cpus = r["cpus_allocated"];
      allocH = allocH !== null && typeof cpus === "number" && cpus > 0 ? allocH + cpus * h : null;
      const gpus = Array.isArray(r["gpus"]) ? r["gpus"].length : 0;
      gpuH += gpus * h;
      gpuUtilH += gpus * h * num(r["gpu_util_avg_percent"]);
      const nodePeak = known(r["memory_peak_bytes"]);
      if (nodePeak !== null) peak = Math.max(peak ?? 0, nodePeak);
      const alloc = num(r["memory_allocated_bytes"]);
      if (alloc > 0 && nodePeak !== null) share = Math.max(share ?? 0, nodePeak / alloc);
      read = plus(read, known(r["io_read_bytes"]));
      written = plus(written, known(r["io_written_bytes"]));
      if (Array.isArray(r["gpus_idle"])) idleH += r["gpus_idle"].length * h;
      const joules = r["energy_joules"];
      if (typeof joules === "object" && joules !== null) for (const j of Object.values(joules)) if (typeof j === "number" && Number.isFinite(j)) energy = (energy ?? 0) + j;
      if (typeof r["ended_at"] === "string" && r["ended_at"] > ended) ended = r["ended_at"];
    }
    const first = nodes[0]!;
    out.set(id, { job_id: id, user: String(first["user"] ?? ""), account: String(first["account"] ?? ""), partition: String(first["partition"] ?? ""), ended_at: ended, node_hours: nodeH, cpu_hours: cpuH, cpu_alloc_hours: allocH, gpu_hours: gpuH, gpu_util_hours: gpuUtilH, memory_peak_bytes: peak, memory_peak_share: share, io_read_bytes: read, io_written_bytes: written, idle_gpu_hours: idleH, energy_joules: energy });
  }
  return out;
}

/** A job from a root's job-end log line (what the root saw across the job's nodes). */
export function jobFromLogLine(r: Record<string, unknown>): JobUsageRecord | null {
  const id = r["job_id"];
  if (typeof id !== "string" || typeof r["ended_at"] !== "string") return null;
  const h = num(r["duration_s"]) / 3600;
  const nodes = Array.isArray(r["nodes"]) ? r["nodes"].length : 1;
  const gpus = num(r["gpus"]);
  const cpu = known(r["cpu_seconds"]);
  return {
    job_id: id,
    user: String(r["user"] ?? ""),
    account: String(r["account"] ?? ""),
    partition: String(r["partition"] ?? ""),
    ended_at: r["ended_at"],
    node_hours: nodes * h,
    cpu_hours: cpu === null ? null : cpu / 3600,
    // The root's sum of its nodes' CPUs × the job's duration (null when the nodes did not say).
    cpu_alloc_hours: num(r["cpus_allocated"]) > 0 ? num(r["cpus_allocated"]) * h : null,
    gpu_hours: gpus * h,
    gpu_util_hours: gpus * h * num(r["gpu_utilization_percent"]),
    memory_peak_bytes: known(r["memory_peak_bytes"]),
    memory_peak_share: null,
    io_read_bytes: known(r["io_read_bytes"]),
    io_written_bytes: known(r["io_written_bytes"]),
    idle_gpu_hours: num(r["idle_gpus"]) * h,
    energy_joules: known(r["energy_joules"]),
  };
}

/**
 * Reads every source: a directory of epilog reports (`*.json`, searched two levels deep, as a site
 * gathers `/var/lib/banyan/jobs` of its nodes), or a root's job-end log (`*.jsonl`, and its
 * rotated `.1`). A job with epilog reports is counted from them (per node), else from the logs;
 * a job seen by two roots' logs is counted once. Unreadable lines are counted, not fatal.
 */
export function readUsage(paths: readonly string[]): { jobs: JobUsageRecord[]; skipped: number } {
  const reports: Record<string, unknown>[] = [];
  const logged = new Map<string, JobUsageRecord>();
  let skipped = 0;
  const parse = (text: string): Record<string, unknown> | null => {
    try {
      const v: unknown = JSON.parse(text);
      return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : null;
    } catch {
      return null;
    }
  };
  const readLog = (file: string): void => {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      const r = parse(line);
      const j = r === null ? null : jobFromLogLine(r);
      if (j === null) skipped++;
      else if (!logged.has(j.job_id)) logged.set(j.job_id, j);
    }
  };
  const walk = (dir: string, depth: number): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() && depth < 2) walk(p, depth + 1);
      else if (e.isFile() && e.name.endsWith(".json")) {
        const r = parse(readFileSync(p, "utf8"));
        if (r === null || typeof r["job_id"] !== "string") skipped++;
        else reports.push(r);
      } else if (e.isFile() && /\.jsonl(\.1)?$/.test(e.name)) readLog(p);
    }
  };
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (err) {
      throw new BanyanError(Code.InvalidConfig, `${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: expected a directory of job reports or a root's job-end log`);
    }
    if (isDir) walk(p, 0);
    else readLog(p);
  }
  const fromReports = jobsFromReports(reports);
  for (const [id, j] of logged) if (!fromReports.has(id)) fromReports.set(id, j);
  return { jobs: [...fromReports.values()], skipped };
}

export interface UsageRow {
  readonly key: string;
  readonly jobs: number;
  readonly node_hours: number;
  /** Over the jobs whose use is known (null when none's is). */
  readonly cpu_hours: number | null;
  /** CPU-hours used over allocated, %, over the jobs whose use is known and that said their allocation; null when none did. */
  readonly cpu_efficiency_percent: number | null;
  readonly gpu_hours: number;
  readonly gpu_utilization_percent: number | null;
  readonly memory_peak_bytes: number | null;
  /** Mean over the jobs that said their allocation of each one's peak share of it, %. */
  readonly memory_peak_of_allocated_percent: number | null;
  readonly io_read_bytes: number | null;
  readonly io_written_bytes: number | null;
  /** Jobs whose use is unknown (a node without cgroup accounting): left out of the sums and efficiencies above, never counted as 0. */
  readonly unaccounted_jobs: number;
  /** CPU-hours allocated (CPUs × duration), over the jobs that said their CPUs: what `sreport job SizesByAccount` counts. */
  readonly cpu_alloc_hours: number | null;
  /** GPU-hours of GPUs allocated and never busy. */
  readonly idle_gpu_hours: number;
  /** Energy attributed to the jobs, over those whose nodes measured some; null when none did. */
  readonly energy_kwh: number | null;
}

/** Sums the jobs that ended in [fromMs, toMs) by the key. */
export function usageRows(jobs: readonly JobUsageRecord[], by: GroupBy, fromMs: number, toMs: number): UsageRow[] {
  const acc = new Map<string, { jobs: number; unknown: number; nodeH: number; cpuH: number | null; usedOfAlloc: number; allocH: number; allAllocH: number | null; gpuH: number; gpuUtilH: number; idleH: number; joules: number | null; peak: number | null; shares: number; shareSum: number; read: number | null; written: number | null }>();
  for (const j of jobs) {
    const at = Date.parse(j.ended_at);
    if (!(at >= fromMs && at < toMs)) continue;
    const key = by === "day" ? j.ended_at.slice(0, 10) : j[by] || "(none)";
    let a = acc.get(key);
    if (a === undefined) acc.set(key, (a = { jobs: 0, unknown: 0, nodeH: 0, cpuH: null, usedOfAlloc: 0, allocH: 0, allAllocH: null, gpuH: 0, gpuUtilH: 0, idleH: 0, joules: null, peak: null, shares: 0, shareSum: 0, read: null, written: null }));
    a.jobs++;
    a.nodeH += j.node_hours;
    if (j.cpu_hours === null) a.unknown++;
    else a.cpuH = (a.cpuH ?? 0) + j.cpu_hours;
    if (j.cpu_hours !== null && j.cpu_alloc_hours !== null && j.cpu_alloc_hours > 0) {
      a.usedOfAlloc += j.cpu_hours;
      a.allocH += j.cpu_alloc_hours;
    }
    if (j.cpu_alloc_hours !== null) a.allAllocH = (a.allAllocH ?? 0) + j.cpu_alloc_hours;
    a.gpuH += j.gpu_hours;
    a.gpuUtilH += j.gpu_util_hours;
    a.idleH += j.idle_gpu_hours;
    if (j.energy_joules !== null) a.joules = (a.joules ?? 0) + j.energy_joules;
    if (j.memory_peak_bytes !== null) a.peak = Math.max(a.peak ?? 0, j.memory_peak_bytes);
    if (j.memory_peak_share !== null) {
      a.shares++;
      a.shareSum += j.memory_peak_share;
    }
    if (j.io_read_bytes !== null) a.read = (a.read ?? 0) + j.io_read_bytes;
    if (j.io_written_bytes !== null) a.written = (a.written ?? 0) + j.io_written_bytes;
  }
  return [...acc]
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([key, a]) => ({
      key,
      jobs: a.jobs,
      node_hours: a.nodeH,
      cpu_hours: a.cpuH,
      cpu_efficiency_percent: a.allocH > 0 ? (100 * a.usedOfAlloc) / a.allocH : null,
      gpu_hours: a.gpuH,
      gpu_utilization_percent: a.gpuH > 0 ? a.gpuUtilH / a.gpuH : null,
      memory_peak_bytes: a.peak,
      memory_peak_of_allocated_percent: a.shares > 0 ? (100 * a.shareSum) / a.shares : null,
      io_read_bytes: a.read,
      io_written_bytes: a.written,
      unaccounted_jobs: a.unknown,
      cpu_alloc_hours: a.allAllocH,
      idle_gpu_hours: a.idleH,
      energy_kwh: a.joules === null ? null : a.joules / 3.6e6,
    }));
}
