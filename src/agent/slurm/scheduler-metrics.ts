/**
 * Parsers of Slurm's own commands into prometheus-slurm-exporter's metric names, so its Grafana
 * dashboard (4323) reads a Banyan root unchanged. Pure functions over command output.
 *   sinfo -h -o "%D|%T"     nodes by state          slurm_nodes_<state>
 *   sinfo -h -o "%C"        cpus A/I/O/T            slurm_cpus_{alloc,idle,other,total}
 *   sinfo -h -o "%R|%C"     per partition           slurm_partition_cpus_{allocated,idle,other,total}{partition}
 *   squeue -h -a -r -o "%T|%P|%r" --states=all      slurm_queue_<state>, slurm_partition_jobs_pending{partition}
 *   squeue -h -a -r -o "%a|%u|%T|%C" --states=PENDING,RUNNING,SUSPENDED
 *                           per account and user    slurm_account_{jobs_pending,jobs_running,jobs_suspended,cpus_running}{account},
 *                                                   slurm_user_*{user}
 *   sshare -n -P -o account,fairshare                 slurm_account_fairshare{account} (needs slurmdbd)
 *   sinfo -h -N -O NodeHost,StateLong,CPUsState,AllocMem,Memory,Gres,GresUsed (each ":0|")
 *                           per node and GPUs       slurm_node_{cpu_alloc,cpu_idle,cpu_other,cpu_total,mem_alloc,mem_total}{node,status},
 *                                                   slurm_gpus_{alloc,idle,total,utilization}
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

/**
 * Most accounts (and most users) one poll reports, and most nodes: beyond, they are left out and
 * counted. At the bounds the families come to ~96,000 series (4 × 2 × 4,000 + 4,000 + 6 × 10,000), under the
 * root's 100,000 series per origin.
 */
export const MAX_LABEL_VALUES = 4_000;
export const MAX_NODES = 10_000;

/** Samples past MAX_LABEL_VALUES, by family group: banyan_slurm_left_out{what}. */
function leftOut(what: string, n: number): SchedulerSample[] {
  return [{ name: "banyan_slurm_left_out", labels: { what }, value: n }];
}

/** Pending, running and suspended jobs, and running CPUs, per account and per user (the exporter's accounts.go and users.go). */
export function parseAccountsAndUsers(out: string): SchedulerSample[] {
  const by = { account: new Map<string, number[]>(), user: new Map<string, number[]>() };
  let dropped = 0;
  for (const line of out.split("\n")) {
    const [account, user, state, cpus] = line.trim().split("|");
    if (account === undefined || user === undefined || state === undefined || cpus === undefined) continue;
    const k = state.toLowerCase();
    const col = k === "pending" ? 0 : k === "running" ? 1 : k === "suspended" ? 2 : -1;
    if (col < 0) continue;
    for (const [label, value] of [["account", account], ["user", user]] as const) {
      const m = by[label];
      let row = m.get(value);
      if (row === undefined) {
        if (m.size >= MAX_LABEL_VALUES) {
          dropped++;
          continue;
        }
        m.set(value, (row = [0, 0, 0, 0]));
      }
      row[col]!++;
      const n = Number(cpus);
      if (col === 1 && Number.isFinite(n) && n > 0) row[3]! += n;
    }
  }
  const samples: SchedulerSample[] = [];
  for (const label of ["account", "user"] as const) {
    for (const [value, row] of by[label]) {
      ["jobs_pending", "jobs_running", "jobs_suspended", "cpus_running"].forEach((f, i) => samples.push({ name: `slurm_${label}_${f}`, labels: { [label]: value }, value: row[i]! }));
    }
  }
  return dropped > 0 ? [...samples, ...leftOut("accounts_users", dropped)] : samples;
}

/** sshare's fair-share factor per account (accounts are indented by their depth in the tree). */
export function parseFairshare(out: string): SchedulerSample[] {
  const seen = new Map<string, number>();
  for (const line of out.split("\n")) {
    const [account, factor] = line.split("|");
    const name = account?.trim();
    if (!name || factor === undefined || factor.trim() === "" || !Number.isFinite(Number(factor))) continue;
    if (seen.size < MAX_LABEL_VALUES || seen.has(name)) seen.set(name, Number(factor));
  }
  return [...seen].map(([account, v]) => ({ name: "slurm_account_fairshare", labels: { account }, value: v }));
}

/** GPUs in a gres string: "gpu:4", "gpu:a100:2(S:0-1)", "gpu:a100:1(IDX:0),gpu:v100:2(IDX:0,2)", "(null)". */
export function gpuCount(gres: string): number {
  let n = 0;
  // Entries are comma-separated, but an index list inside parentheses has commas too.
  for (const entry of gres.replace(/\([^)]*\)/g, "").split(",")) {
    const parts = entry.trim().split(":");
    if (parts[0] !== "gpu") continue;
    const count = Number(parts.at(-1));
    n += parts.length >= 2 && Number.isInteger(count) ? count : 1;
  }
  return n;
}

/** Per node CPUs and memory (MB, as sinfo prints them), and the cluster's GPUs (the exporter's node.go and gpus.go). */
export function parseNodes(out: string): SchedulerSample[] {
  const samples: SchedulerSample[] = [];
  const seen = new Set<string>();
  let gpusTotal = 0;
  let gpusAlloc = 0;
  let dropped = 0;
  for (const line of out.split("\n")) {
    const f = line.split("|").map((x) => x.trim());
    const [node, status, cpuState, allocMem, memory, gres, gresUsed] = f;
    if (!node || status === undefined || gresUsed === undefined || seen.has(node)) continue; // a node in two partitions is listed twice
    seen.add(node);
    gpusTotal += gpuCount(gres!);
    gpusAlloc += gpuCount(gresUsed);
    if (seen.size > MAX_NODES) {
      dropped++;
      continue;
    }
    const c = cpus(cpuState!);
    const labels = { node, status };
    if (c !== null) ["alloc", "idle", "other", "total"].forEach((k, i) => samples.push({ name: `slurm_node_cpu_${k}`, labels, value: c[i]! }));
    samples.push({ name: "slurm_node_mem_alloc", labels, value: Number(allocMem) || 0 });
    samples.push({ name: "slurm_node_mem_total", labels, value: Number(memory) || 0 });
  }
  samples.push(
    { name: "slurm_gpus_alloc", labels: {}, value: gpusAlloc },
    { name: "slurm_gpus_idle", labels: {}, value: gpusTotal - gpusAlloc },
    { name: "slurm_gpus_total", labels: {}, value: gpusTotal },
    { name: "slurm_gpus_utilization", labels: {}, value: gpusTotal > 0 ? gpusAlloc / gpusTotal : 0 },
  );
  return dropped > 0 ? [...samples, ...leftOut("nodes", dropped)] : samples;
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
