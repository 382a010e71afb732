import { parseExposition } from "../../series/text-parser.js";
import { MAX_LABEL_VALUES, MAX_NODES, type SchedulerSample } from "./scheduler-metrics.js";

/** The pages slurmctld serves with `MetricsType=metrics/openmetrics` (Slurm 25.11+), by their path under /metrics/. */
export const SLURMCTLD_PAGES = ["jobs", "nodes", "partitions", "scheduler", "jobs-users-accts"] as const;
export type SlurmctldPage = (typeof SLURMCTLD_PAGES)[number];

/** Job states of prometheus-slurm-exporter's slurm_queue_* and slurmctld's slurm_jobs_* names for them. */
const QUEUE: readonly (readonly [string, string])[] = [
  ["pending", "pending"],
  ["running", "running"],
  ["suspended", "suspended"],
  ["cancelled", "cancelled"],
  ["completing", "completing"],
  ["completed", "completed"],
  ["configuring", "configuring"],
  ["failed", "failed"],
  ["timeout", "timeout"],
  ["preempted", "preempted"],
  ["node_fail", "node_failed"],
];
/** Node states of slurm_nodes_* (the exporter's) and slurmctld's. */
const NODES: readonly (readonly [string, string])[] = [
  ["alloc", "alloc"],
  ["comp", "completing"],
  ["down", "down"],
  ["drain", "drain"],
  ["fail", "fail"],
  ["idle", "idle"],
  ["maint", "maint"],
  ["mix", "mixed"],
  ["resv", "resv"],
];
/** sdiag's figures (the exporter's slurm_scheduler_*) and slurmctld's names for them. */
const SCHEDULER: readonly (readonly [string, string, boolean])[] = [
  ["slurm_scheduler_threads", "slurm_server_thread_cnt", false],
  ["slurm_scheduler_queue_size", "slurm_agent_queue_size", false],
  ["slurm_scheduler_dbd_queue_size", "slurm_slurmdbd_queue_size", false],
  ["slurm_scheduler_last_cycle", "slurm_schedule_cycle_last", false],
  ["slurm_scheduler_mean_cycle", "slurm_sched_mean_cycle", false],
  ["slurm_scheduler_backfilled_jobs_since_start_total", "slurm_backfilled_jobs", true],
  ["slurm_scheduler_backfilled_jobs_since_cycle_total", "slurm_last_backfilled_jobs", false],
  ["slurm_scheduler_backfilled_heterogeneous_total", "slurm_backfilled_het_jobs", true],
  ["slurm_scheduler_backfill_last_cycle", "slurm_bf_cycle_last", false],
  ["slurm_scheduler_backfill_mean_cycle", "slurm_bf_mean_cycle", false],
  ["slurm_scheduler_backfill_depth_mean", "slurm_bf_depth_mean", false],
];

/**
 * The scheduler figures from slurmctld's own pages instead of sinfo, squeue and sdiag: under
 * prometheus-slurm-exporter's names and labels (dashboard 4323 reads them unchanged), from one
 * HTTP request a page instead of commands that walk every job. What the pages do not say is left
 * out, never made 0: the per-node detail with its state (`slurm_node_*{node,status}`: a node's
 * state is not on the page), pending jobs held by a dependency, fair share (sshare still asks for it).
 */
export function fromSlurmctldPages(pages: Readonly<Partial<Record<SlurmctldPage, string>>>): SchedulerSample[] {
  const out: SchedulerSample[] = [];
  const values = (page: SlurmctldPage): Map<string, { labels: Record<string, string>; value: number }[]> => {
    const m = new Map<string, { labels: Record<string, string>; value: number }[]>();
    for (const s of parseExposition(pages[page] ?? "").samples) {
      let list = m.get(s.name);
      if (list === undefined) m.set(s.name, (list = []));
      list.push({ labels: s.labels, value: s.value });
    }
    return m;
  };
  const one = (m: Map<string, { value: number }[]>, name: string): number | undefined => m.get(name)?.[0]?.value;
  const sum = (m: Map<string, { value: number }[]>, name: string): number | undefined => m.get(name)?.reduce((a, s) => a + s.value, 0);
  if (pages.jobs !== undefined) {
    const jobs = values("jobs");
    for (const [ours, theirs] of QUEUE) {
      const v = one(jobs, `slurm_jobs_${theirs}`);
      if (v !== undefined) out.push({ name: `slurm_queue_${ours}`, labels: {}, value: v });
    }
  }
  if (pages.nodes !== undefined) {
    const nodes = values("nodes");
    for (const [ours, theirs] of NODES) {
      const v = one(nodes, `slurm_nodes_${theirs}`);
      if (v !== undefined) out.push({ name: `slurm_nodes_${ours}`, labels: {}, value: v });
    }
    const total = sum(nodes, "slurm_node_cpus");
    const alloc = sum(nodes, "slurm_node_cpus_alloc");
    const idle = sum(nodes, "slurm_node_cpus_idle");
    if (total !== undefined && alloc !== undefined && idle !== undefined) {
      out.push({ name: "slurm_cpus_alloc", labels: {}, value: alloc }, { name: "slurm_cpus_idle", labels: {}, value: idle }, { name: "slurm_cpus_other", labels: {}, value: Math.max(0, total - alloc - idle) }, { name: "slurm_cpus_total", labels: {}, value: total });
    }
    if ((nodes.get("slurm_node_cpus")?.length ?? 0) > MAX_NODES) out.push({ name: "banyan_slurm_left_out", labels: { what: "nodes" }, value: nodes.get("slurm_node_cpus")!.length - MAX_NODES });
  }
  if (pages.partitions !== undefined) {
    const parts = values("partitions");
    const byPartition = (name: string): Map<string, number> => new Map((parts.get(name) ?? []).filter((s) => s.labels["partition"] !== undefined).map((s) => [s.labels["partition"]!, s.value]));
    const total = byPartition("slurm_partition_cpus");
    const alloc = byPartition("slurm_partition_nodes_cpus_alloc");
    const idle = byPartition("slurm_partition_nodes_cpus_idle");
    for (const [partition, t] of total) {
      const a = alloc.get(partition);
      const i = idle.get(partition);
      if (a === undefined || i === undefined) continue;
      out.push(
        { name: "slurm_partition_cpus_allocated", labels: { partition }, value: a },
        { name: "slurm_partition_cpus_idle", labels: { partition }, value: i },
        { name: "slurm_partition_cpus_other", labels: { partition }, value: Math.max(0, t - a - i) },
        { name: "slurm_partition_cpus_total", labels: { partition }, value: t },
      );
    }
    for (const [partition, v] of byPartition("slurm_partition_jobs_pending")) out.push({ name: "slurm_partition_jobs_pending", labels: { partition }, value: v });
  }
  if (pages.scheduler !== undefined) {
    const sched = values("scheduler");
    for (const [ours, theirs, counter] of SCHEDULER) {
      const v = one(sched, theirs);
      if (v !== undefined) out.push({ name: ours, labels: {}, value: v, counter });
    }
  }
  if (pages["jobs-users-accts"] !== undefined) {
    const ua = values("jobs-users-accts");
    let dropped = 0;
    for (const [ours, theirs, label] of [["account", "account", "account"], ["user", "user", "username"]] as const) {
      const seen = new Set<string>();
      for (const [field, name] of [["jobs_pending", "jobs_pending"], ["jobs_running", "jobs_running"], ["jobs_suspended", "jobs_suspended"], ["cpus_running", "jobs_cpus_alloc"]] as const) {
        for (const s of ua.get(`slurm_${theirs}_${name}`) ?? []) {
          const key = s.labels[label];
          if (key === undefined) continue;
          if (!seen.has(key) && seen.size >= MAX_LABEL_VALUES) {
            dropped++;
            continue;
          }
          seen.add(key);
          out.push({ name: `slurm_${ours}_${field}`, labels: { [ours]: key }, value: s.value });
        }
      }
    }
    if (dropped > 0) out.push({ name: "banyan_slurm_left_out", labels: { what: "accounts_users" }, value: dropped });
  }
  return out;
}
