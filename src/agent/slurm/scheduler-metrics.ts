/**
 * Parsers of Slurm's own commands into prometheus-slurm-exporter's metric names, so its Grafana
 * dashboard (4323) reads a Banyan root unchanged. Pure functions over command output.
 *   sinfo -h -o "%D|%T"     nodes by state          slurm_nodes_<state>
 *   sinfo -h -o "%C"        cpus A/I/O/T            slurm_cpus_{alloc,idle,other,total}
 *   sinfo -h -o "%R|%C"     per partition           slurm_partition_cpus_{allocated,idle,other,total}{partition}
 *   squeue -h -a -r -o "%T|%P|%r" --states=all      slurm_queue_<state>, slurm_partition_jobs_pending{partition}
 *   sdiag                   scheduler statistics    slurm_scheduler_*
 */
export interface SchedulerSample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
  readonly counter?: boolean;
}

const NODE_STATES: [RegExp, string][] = [
  [/^alloc/, "alloc"],
  [/^comp/, "comp"],
  [/^down/, "down"],
  [/^drain/, "drain"],
  [/^err/, "err"],
  [/^fail/, "fail"],
  [/^idle/, "idle"],
  [/^maint/, "maint"],
  [/^mix/, "mix"],
  [/^resv|^reserved/, "resv"],
];

export function parseNodeStates(out: string): SchedulerSample[] {
  const counts = new Map(NODE_STATES.map(([, s]) => [s, 0]));
  for (const line of out.split("\n")) {
    const [n, state] = line.trim().split("|");
    if (state === undefined) continue;
    const s = NODE_STATES.find(([re]) => re.test(state.toLowerCase()))?.[1];
    if (s !== undefined) counts.set(s, counts.get(s)! + Number(n));
  }
  return [...counts].map(([s, v]) => ({ name: `slurm_nodes_${s}`, labels: {}, value: v }));
}

/** "A/I/O/T" of sinfo %C. */
function cpus(field: string): [number, number, number, number] | null {
  const p = field.trim().split("/").map(Number);
  return p.length === 4 && p.every(Number.isFinite) ? (p as [number, number, number, number]) : null;
}

export function parseCpus(out: string): SchedulerSample[] {
  const c = cpus(out.split("\n")[0] ?? "");
  if (c === null) return [];
  return ["alloc", "idle", "other", "total"].map((k, i) => ({ name: `slurm_cpus_${k}`, labels: {}, value: c[i]! }));
}

export function parsePartitionCpus(out: string): SchedulerSample[] {
  const out2: SchedulerSample[] = [];
  for (const line of out.split("\n")) {
    const [partition, field] = line.trim().split("|");
    const c = field === undefined ? null : cpus(field);
    if (c === null || partition === undefined) continue;
    ["allocated", "idle", "other", "total"].forEach((k, i) => out2.push({ name: `slurm_partition_cpus_${k}`, labels: { partition }, value: c[i]! }));
  }
  return out2;
}

const JOB_STATES = ["pending", "pending_dependency", "running", "suspended", "cancelled", "completing", "completed", "configuring", "failed", "timeout", "preempted", "node_fail"];

export function parseJobs(out: string): SchedulerSample[] {
  const counts = new Map(JOB_STATES.map((s) => [s, 0]));
  const pendingByPartition = new Map<string, number>();
  for (const line of out.split("\n")) {
    const [state, partition, reason] = line.trim().split("|");
    if (state === undefined || partition === undefined) continue;
    let s = state.toLowerCase();
    if (s === "pending" && reason === "Dependency") s = "pending_dependency";
    if (counts.has(s)) counts.set(s, counts.get(s)! + 1);
    if (state.toLowerCase() === "pending") pendingByPartition.set(partition, (pendingByPartition.get(partition) ?? 0) + 1);
  }
  return [
    ...[...counts].map(([s, v]) => ({ name: `slurm_queue_${s}`, labels: {}, value: v })),
    ...[...pendingByPartition].map(([partition, v]) => ({ name: "slurm_partition_jobs_pending", labels: { partition }, value: v })),
  ];
}

/** [sdiag line prefix, metric, counter] */
const SDIAG: [RegExp, string, boolean][] = [
  [/^\s*Server thread count:\s*(\d+)/m, "slurm_scheduler_threads", false],
  [/^\s*Agent queue size:\s*(\d+)/m, "slurm_scheduler_queue_size", false],
  [/^\s*DBD Agent queue size:\s*(\d+)/m, "slurm_scheduler_dbd_queue_size", false],
  [/^Main schedule statistics[\s\S]*?Last cycle:\s*(\d+)/m, "slurm_scheduler_last_cycle", false],
  [/^Main schedule statistics[\s\S]*?Mean cycle:\s*(\d+)/m, "slurm_scheduler_mean_cycle", false],
  [/^Main schedule statistics[\s\S]*?Cycles per minute:\s*(\d+)/m, "slurm_scheduler_cycle_per_minute", false],
  [/^Backfilling stats[\s\S]*?Total backfilled jobs \(since last slurm start\):\s*(\d+)/m, "slurm_scheduler_backfilled_jobs_since_start_total", true],
  [/^Backfilling stats[\s\S]*?Total backfilled jobs \(since last stats cycle start\):\s*(\d+)/m, "slurm_scheduler_backfilled_jobs_since_cycle_total", false],
  [/^Backfilling stats[\s\S]*?Total backfilled heterogeneous job components:\s*(\d+)/m, "slurm_scheduler_backfilled_heterogeneous_total", true],
  [/^Backfilling stats[\s\S]*?Last cycle:\s*(\d+)/m, "slurm_scheduler_backfill_last_cycle", false],
  [/^Backfilling stats[\s\S]*?Mean cycle:\s*(\d+)/m, "slurm_scheduler_backfill_mean_cycle", false],
  [/^Backfilling stats[\s\S]*?Depth Mean:\s*(\d+)/m, "slurm_scheduler_backfill_depth_mean", false],
];

/**
 * sdiag's figures; one whose line sdiag leaves out (no backfill cycle yet, an older Slurm) is 0, as
 * prometheus-slurm-exporter exports it, so the dashboard's panels read 0, not "No data".
 */
export function parseSdiag(out: string): SchedulerSample[] {
  const samples: SchedulerSample[] = [];
  for (const [re, name, counter] of SDIAG) {
    const m = re.exec(out);
    samples.push({ name, labels: {}, value: m ? Number(m[1]) : 0, counter });
  }
  return samples;
}
