import type { DashboardSpec, PanelSpec, Query, VariableSpec } from "./grafana.js";

/**
 * The dashboards `banyan dashboards generate` writes: the cluster (USE per partition, the trees,
 * every node), a job, a user, and Banyan's own health. Every expression reads series a Banyan root
 * serves: node_exporter's names from the agents, banyan_node_* and banyan_job_* from the agents,
 * banyan_root_* from the roots. Joins are `on (cluster, instance)`: at a central root the cluster
 * label tells two clusters' nodes apart, elsewhere it is absent on both sides and matches.
 */

const R = "$__rate_interval";
const rate = (sel: string): string => `rate(${sel}[${R}])`;
const CLUSTER = 'cluster=~"$cluster"';
const PARTITION = `banyan_node_partition_info{${CLUSTER},partition=~"$partition"}`;
/** Each node's value of a per-node expression, as one series per partition the node is in. */
const perPartition = (agg: string, perNode: string): string => `${agg} by (partition) (${PARTITION} * on (cluster, instance) group_left () (${perNode}))`;
/** 1 for each node of the chosen partitions (a node in two partitions once). */
const IN_PARTITIONS = `max by (cluster, instance) (${PARTITION})`;
const CPU_BUSY = `1 - avg by (cluster, instance) (${rate(`node_cpu_seconds_total{mode="idle",${CLUSTER}}`)})`;
const MEM_USED = `1 - node_memory_MemAvailable_bytes{${CLUSTER}} / node_memory_MemTotal_bytes{${CLUSTER}}`;
/** Each node's 1-minute load over its CPUs; `m`: more matchers. */
const loadPerCore = (m: string): string => `node_load1${m === "" ? "" : `{${m}}`} / on (cluster, instance) count by (cluster, instance) (node_cpu_seconds_total{mode="idle"${m === "" ? "" : `,${m}`}})`;
const LOAD_PER_CORE = loadPerCore(CLUSTER);
const NODE_UP = `max by (cluster, instance) (banyan_node_up{${CLUSTER}})`;
const NET_ERRORS = ["receive_errs", "transmit_errs", "receive_drop", "transmit_drop"].map((m) => rate(`node_network_${m}_total{${CLUSTER}}`)).join(" + ");

const q = (expr: string, legend?: string): Query => (legend === undefined ? { expr } : { expr, legend });
const instant = (expr: string, legend?: string): Query => ({ ...q(expr, legend), instant: true });
const ts = (title: string, description: string, queries: Query[], extra: Partial<PanelSpec> = {}): PanelSpec => ({ kind: "timeseries", title, description, queries, ...extra });
const stat = (title: string, description: string, query: Query, extra: Partial<PanelSpec> = {}): PanelSpec => ({ kind: "stat", title, description, queries: [query], ...extra });
const table = (title: string, description: string, query: Query, extra: Partial<PanelSpec> = {}): PanelSpec => ({ kind: "table", title, description, queries: [query], ...extra });

const clusterVar: VariableSpec = { name: "cluster", label: "Cluster", query: "label_values(banyan_node_up, cluster)", multi: true, description: "Clusters at a central root (All elsewhere: the label is absent)." };

export function clusterDashboard(): DashboardSpec {
  return {
    uid: "banyan-cluster",
    title: "Banyan / Cluster",
    description: "The cluster by the USE method per Slurm partition (utilisation, saturation, errors), the trees, and every node.",
    tags: ["banyan", "cluster"],
    variables: [clusterVar, { name: "partition", label: "Partition", query: `label_values(banyan_node_partition_info{${CLUSTER}}, partition)`, multi: true, description: "Slurm partitions (banyan_node_partition_info, from scontrol on each node)." }],
    rows: [
      {
        title: "Now",
        panels: [
          stat("Nodes up", "Nodes whose stream reaches a root.", q(`sum(${NODE_UP})`)),
          stat("Nodes down", "Nodes a root expects that are silent past their deadline.", q(`count(${NODE_UP} == 0) or vector(0)`)),
          stat("Away from their planned parent", "Nodes whose stream goes through a fallback parent (a relay or root of theirs is down).", q(`sum(banyan_node_away{${CLUSTER}})`)),
          stat("Running jobs", "Slurm jobs with series on some node.", q(`count(count by (cluster, job_id) (banyan_job_info{${CLUSTER}})) or vector(0)`)),
        ],
      },
      {
        title: "Utilisation by partition",
        panels: [
          ts("CPU busy", "Mean share of CPU time not idle over the partition's nodes.", [q(`100 * ${perPartition("avg", CPU_BUSY)}`, "{{partition}}")], { unit: "percent", max: 100 }),
          ts("Memory used", "Mean share of memory not available (MemAvailable over MemTotal).", [q(`100 * ${perPartition("avg", MEM_USED)}`, "{{partition}}")], { unit: "percent", max: 100 }),
          ts("GPU utilisation", "Mean utilisation of the partition's GPUs (DCGM_FI_DEV_GPU_UTIL).", [q(perPartition("avg", `avg by (cluster, instance) (DCGM_FI_DEV_GPU_UTIL{${CLUSTER}})`), "{{partition}}")], { unit: "percent", max: 100 }),
          ts("Network", "Bytes per second received and sent by the partition's nodes (all devices but lo).", [
            q(perPartition("sum", `sum by (cluster, instance) (${rate(`node_network_receive_bytes_total{device!="lo",${CLUSTER}}`)})`), "{{partition}} in"),
            q(perPartition("sum", `sum by (cluster, instance) (${rate(`node_network_transmit_bytes_total{device!="lo",${CLUSTER}}`)})`), "{{partition}} out"),
          ], { unit: "Bps" }),
          ts("Disk I/O", "Bytes per second read and written by the partition's nodes' block devices.", [
            q(perPartition("sum", `sum by (cluster, instance) (${rate(`node_disk_read_bytes_total{${CLUSTER}}`)})`), "{{partition}} read"),
            q(perPartition("sum", `sum by (cluster, instance) (${rate(`node_disk_written_bytes_total{${CLUSTER}}`)})`), "{{partition}} written"),
          ], { unit: "Bps" }),
        ],
      },
      {
        title: "Saturation by partition",
        panels: [
          ts("Load per core", "Mean 1-minute load over the node's CPUs; above 1 the run queue waits.", [q(perPartition("avg", LOAD_PER_CORE), "{{partition}}")]),
          ts("Pressure (PSI)", "Seconds per second some task waited for memory, CPU or I/O, summed over the partition's nodes (kernels with PSI).", [
            q(perPartition("sum", rate(`node_pressure_memory_waiting_seconds_total{${CLUSTER}}`)), "{{partition}} memory"),
            q(perPartition("sum", rate(`node_pressure_cpu_waiting_seconds_total{${CLUSTER}}`)), "{{partition}} cpu"),
            q(perPartition("sum", rate(`node_pressure_io_waiting_seconds_total{${CLUSTER}}`)), "{{partition}} io"),
          ], { unit: "s" }),
        ],
      },
      {
        title: "Errors by partition",
        panels: [
          ts("Network errors and drops", "Receive and transmit errors and drops per second.", [q(perPartition("sum", `sum by (cluster, instance) (${NET_ERRORS})`), "{{partition}}")], { unit: "ops" }),
          ts("Nodes down", "Nodes of the partition that a root expects and does not hear.", [q(perPartition("sum", `1 - ${NODE_UP}`), "{{partition}}")]),
          ts("Failovers in the last hour", "Moves to a fallback parent, summed over the partition's nodes.", [q(perPartition("sum", `max by (cluster, instance) (banyan_node_failovers_last_hour{${CLUSTER}})`), "{{partition}}")]),
        ],
      },
      {
        title: "Trees",
        panels: [
          ts("Nodes up per root", "Nodes each root hears (each tree's nodes report to its root).", [q(`sum by (root) (banyan_node_up{${CLUSTER}})`, "{{root}}")], { stack: true }),
          ts("Away and failing over", "Nodes away from their planned parent now, and failovers in the last hour.", [
            q(`sum(banyan_node_away{${CLUSTER}})`, "away now"),
            q(`sum(banyan_node_failovers_last_hour{${CLUSTER}})`, "failovers, last hour"),
          ]),
          ts("Sample to root latency (p99)", "From a node's sample to its root, per root.", [q(`histogram_quantile(0.99, sum by (instance, le) (${rate("banyan_root_frame_latency_seconds_bucket")}))`, "{{instance}}")], { unit: "s" }),
          table("Nodes with the most failovers", "The last hour's failovers, most first.", instant(`topk(20, banyan_node_failovers_last_hour{${CLUSTER}})`)),
        ],
      },
      {
        title: "Nodes",
        panels: [
          { kind: "heatmap", title: "CPU busy, every node", description: "How many of the chosen partitions' nodes are how busy: one column per interval, one band per 5 %.", queries: [q(`100 * (${CPU_BUSY}) * on (cluster, instance) group_left () ${IN_PARTITIONS}`, "{{instance}}")], unit: "percent" },
          { kind: "heatmap", title: "Memory used, every node", description: "How many of the chosen partitions' nodes use how much of their memory.", queries: [q(`100 * (${MEM_USED}) * on (cluster, instance) group_left () ${IN_PARTITIONS}`, "{{instance}}")], unit: "percent" },
          table("Busiest nodes", "CPU busy now, busiest first.", instant(`topk(20, 100 * (${CPU_BUSY}) * on (cluster, instance) group_left () ${IN_PARTITIONS})`), { unit: "percent" }),
          table("Most loaded nodes", "Load per core now, highest first.", instant(`topk(20, (${LOAD_PER_CORE}) * on (cluster, instance) group_left () ${IN_PARTITIONS})`)),
        ],
      },
    ],
  };
}

const JOB = 'job_id="$job_id"';
/** 1 for each node of the job while it runs on it. */
const ON_JOB = `max by (cluster, instance) (banyan_job_info{${JOB}})`;

export function jobDashboard(): DashboardSpec {
  return {
    uid: "banyan-job",
    title: "Banyan / Job",
    description: "One Slurm job: its nodes, what it uses on each (the straggler stands out), and each node's series while the job ran.",
    tags: ["banyan", "slurm", "job"],
    from: "3h",
    variables: [{ name: "job_id", label: "Job", query: "label_values(banyan_job_info, job_id)", description: "Slurm jobs with series in the time range (running, or ended within it)." }],
    rows: [
      {
        title: "Job",
        panels: [
          table("Job", "Its user, partition and account, one row per node.", instant(`banyan_job_info{${JOB}}`), { width: 24, height: 5 }),
          stat("Nodes", "Nodes the job runs on.", q(`count(banyan_job_info{${JOB}})`)),
          stat("CPUs allocated", "On all its nodes (SLURM_JOB_CPUS_PER_NODE).", q(`sum(banyan_job_cpus_allocated{${JOB}})`)),
          stat("CPU efficiency", "CPU time used over CPUs allocated.", q(`sum(${rate(`banyan_job_cpu_seconds_total{${JOB}}`)}) / sum(banyan_job_cpus_allocated{${JOB}})`), { unit: "percentunit" }),
          stat("Memory peak", "The largest peak of a node's cgroup.", q(`max(banyan_job_memory_peak_bytes{${JOB}})`), { unit: "bytes" }),
        ],
      },
      {
        title: "Per node",
        panels: [
          ts("CPU cores used", "CPU seconds per second of the job's processes on each node.", [q(rate(`banyan_job_cpu_seconds_total{${JOB}}`), "{{instance}}")]),
          ts("CPU efficiency", "CPU cores used over cores allocated, per node.", [q(`${rate(`banyan_job_cpu_seconds_total{${JOB}}`)} / on (cluster, instance) banyan_job_cpus_allocated{${JOB}}`, "{{instance}}")], { unit: "percentunit" }),
          ts("Memory", "The job's cgroup memory on each node.", [q(`banyan_job_memory_bytes{${JOB}}`, "{{instance}}")], { unit: "bytes" }),
          ts("Block I/O", "Bytes per second the job read and wrote on each node.", [
            q(rate(`banyan_job_io_read_bytes_total{${JOB}}`), "{{instance}} read"),
            q(rate(`banyan_job_io_written_bytes_total{${JOB}}`), "{{instance}} written"),
          ], { unit: "Bps" }),
          ts("GPU utilisation", "Mean utilisation of the job's GPUs on each node.", [q(`banyan_job_gpu_utilization_percent{${JOB}}`, "{{instance}}")], { unit: "percent", max: 100 }),
          ts("GPU memory", "Framebuffer memory the job's GPUs use on each node.", [q(`banyan_job_gpu_memory_used_bytes{${JOB}}`, "{{instance}}")], { unit: "bytes" }),
        ],
      },
      {
        title: "Its nodes while it ran",
        panels: [
          ts("Load per core", "Each node's 1-minute load over its CPUs, while the job was on it.", [q(`(${loadPerCore("")}) * on (cluster, instance) group_left () ${ON_JOB}`, "{{instance}}")]),
          ts("Memory available", "Each node's MemAvailable, while the job was on it.", [q(`node_memory_MemAvailable_bytes * on (cluster, instance) group_left () ${ON_JOB}`, "{{instance}}")], { unit: "bytes" }),
          ts("Network", "Bytes per second each node received and sent (all devices but lo).", [
            q(`sum by (cluster, instance) (${rate('node_network_receive_bytes_total{device!="lo"}')}) * on (cluster, instance) group_left () ${ON_JOB}`, "{{instance}} in"),
            q(`sum by (cluster, instance) (${rate('node_network_transmit_bytes_total{device!="lo"}')}) * on (cluster, instance) group_left () ${ON_JOB}`, "{{instance}} out"),
          ], { unit: "Bps" }),
          ts("Its GPUs (DCGM)", "Utilisation of each of the job's GPUs, from the node's DCGM_FI_DEV_GPU_UTIL.", [q(`DCGM_FI_DEV_GPU_UTIL * on (cluster, instance, gpu) group_left () max by (cluster, instance, gpu) (banyan_job_gpu_info{${JOB}})`, "{{instance}} GPU {{gpu}}")], { unit: "percent", max: 100 }),
        ],
      },
    ],
  };
}

const USER = 'user="$user"';

export function userDashboard(): DashboardSpec {
  return {
    uid: "banyan-user",
    title: "Banyan / User",
    description: "One user's Slurm jobs: how many, where, and how well they use what they were given.",
    tags: ["banyan", "slurm", "user"],
    from: "6h",
    variables: [{ name: "user", label: "User", query: "label_values(banyan_job_info, user)", description: "Users with jobs in the time range." }],
    rows: [
      {
        title: "Now",
        panels: [
          stat("Running jobs", "Jobs of the user with series on some node.", q(`count(count by (cluster, job_id) (banyan_job_info{${USER}}))`)),
          stat("Nodes in use", "Nodes running a job of the user.", q(`count(count by (cluster, instance) (banyan_job_info{${USER}}))`)),
          stat("CPU efficiency", "CPU time used over CPUs allocated, all the user's jobs.", q(`sum(${rate(`banyan_job_cpu_seconds_total{${USER}}`)}) / sum(banyan_job_cpus_allocated{${USER}})`), { unit: "percentunit" }),
          stat("GPU utilisation", "Mean utilisation of the user's jobs' GPUs.", q(`avg(banyan_job_gpu_utilization_percent{${USER}})`), { unit: "percent" }),
          table("Jobs", "The user's jobs with their partition, account and number of nodes.", instant(`count by (job_id, partition, account) (banyan_job_info{${USER}})`, "nodes"), { width: 24, height: 6 }),
        ],
      },
      {
        title: "By job",
        panels: [
          ts("CPU efficiency", "CPU time used over CPUs allocated, per job.", [q(`sum by (job_id) (${rate(`banyan_job_cpu_seconds_total{${USER}}`)}) / sum by (job_id) (banyan_job_cpus_allocated{${USER}})`, "{{job_id}}")], { unit: "percentunit" }),
          ts("Memory", "Memory used, summed over each job's nodes.", [q(`sum by (job_id) (banyan_job_memory_bytes{${USER}})`, "{{job_id}}")], { unit: "bytes" }),
          ts("GPU utilisation", "Mean utilisation of each job's GPUs.", [q(`avg by (job_id) (banyan_job_gpu_utilization_percent{${USER}})`, "{{job_id}}")], { unit: "percent", max: 100 }),
          ts("Block I/O", "Bytes per second read and written, per job.", [
            q(`sum by (job_id) (${rate(`banyan_job_io_read_bytes_total{${USER}}`)})`, "{{job_id}} read"),
            q(`sum by (job_id) (${rate(`banyan_job_io_written_bytes_total{${USER}}`)})`, "{{job_id}} written"),
          ], { unit: "Bps" }),
        ],
      },
    ],
  };
}

export function healthDashboard(): DashboardSpec {
  return {
    uid: "banyan-health",
    title: "Banyan / Health",
    description: "Banyan itself: the trees, what the roots ingest, how late samples arrive, resyncs, memory and refusals.",
    tags: ["banyan", "health"],
    variables: [],
    rows: [
      {
        title: "Trees",
        panels: [
          stat("Nodes up", "Nodes whose stream reaches a root.", q("sum(max by (cluster, instance) (banyan_node_up))")),
          stat("Nodes known", "Nodes the roots expect or have seen.", q("count(max by (cluster, instance) (banyan_node_up))")),
          stat("Tree connections", "Streams of children open at the roots.", q("sum(banyan_tree_connections)")),
          stat("Series held", "Series the roots hold for nodes that are up.", q("sum(banyan_root_series)")),
          ts("Nodes up per root", "Nodes each root hears.", [q("sum by (root) (banyan_node_up)", "{{root}}")], { stack: true }),
          ts("Away and failing over", "Nodes away from their planned parent now, and failovers in the last hour.", [q("sum(banyan_node_away)", "away now"), q("sum(banyan_node_failovers_last_hour)", "failovers, last hour")]),
        ],
      },
      {
        title: "Ingest",
        panels: [
          ts("Series updates per second", "Values changed by frames, per root.", [q(`sum by (instance) (${rate("banyan_root_series_updates_total")})`, "{{instance}}")], { unit: "ops" }),
          ts("Frames per second", "Frames applied per root, by kind (key: full state; delta: changes).", [q(`sum by (instance, kind) (${rate("banyan_root_frames_applied_total")})`, "{{instance}} {{kind}}")], { unit: "ops" }),
          ts("Bytes in", "Compressed frame payload per second, per root.", [q(`sum by (instance) (${rate("banyan_root_payload_bytes_total")})`, "{{instance}}")], { unit: "Bps" }),
          ts("Ingest backlog", "How far behind its input each root is (it stretches the deadline before a node is marked down).", [q("banyan_root_ingest_backlog_seconds", "{{instance}}")], { unit: "s" }),
        ],
      },
      {
        title: "Latency",
        panels: [
          { kind: "heatmap", title: "Sample to root", description: "The histogram of the time from a node's sample to its root, all roots.", queries: [{ expr: `sum by (le) (${rate("banyan_root_frame_latency_seconds_bucket")})`, legend: "{{le}}", heatmap: true }], unit: "s" },
          ts("Sample to root, quantiles", "p50 and p99 per root.", [
            q(`histogram_quantile(0.5, sum by (instance, le) (${rate("banyan_root_frame_latency_seconds_bucket")}))`, "{{instance}} p50"),
            q(`histogram_quantile(0.99, sum by (instance, le) (${rate("banyan_root_frame_latency_seconds_bucket")}))`, "{{instance}} p99"),
          ], { unit: "s" }),
          ts("Scrape render time (p99)", "Time a root takes to render /metrics.", [q(`histogram_quantile(0.99, sum by (instance, le) (${rate("banyan_root_render_seconds_bucket")}))`, "{{instance}}")], { unit: "s" }),
        ],
      },
      {
        title: "Resyncs and memory",
        panels: [
          ts("Resyncs", "Keyframe requests waiting for the budget, and the budget (requests per second).", [q("banyan_root_resyncs_waiting", "{{instance}} waiting"), q("banyan_root_resync_rate_per_second", "{{instance}} budget /s")]),
          ts("Memory", "Heap and external memory in use against the budget past which a root takes no new origin.", [q("banyan_root_memory_used_bytes", "{{instance}} used"), q("banyan_root_memory_budget_bytes", "{{instance}} budget")], { unit: "bytes" }),
          ts("Frames waiting", "Bytes of frames that came ahead of a missing one (bounded at 64 MiB), and of batches received but not yet applied (past 4 × maxMessageBytes the links wait).", [q("banyan_root_held_frame_bytes", "{{instance}} held for a gap"), q("banyan_root_input_waiting_bytes", "{{instance}} to apply")], { unit: "bytes" }),
        ],
      },
      {
        title: "Refusals and errors",
        panels: [
          ts("Errors", "Frames that could not be decoded, sweeps that ran late, families left off the page.", [
            q(`sum by (instance) (${rate("banyan_root_decode_errors_total")})`, "{{instance}} decode errors /s"),
            q(`sum by (instance) (${rate("banyan_root_sweeps_stalled_total")})`, "{{instance}} stalled sweeps /s"),
            q("banyan_root_family_conflicts", "{{instance}} family conflicts"),
          ]),
          ts("HTTP requests refused", "Requests refused at the roots' HTTP ports (limits, authentication).", [q(`sum by (instance) (${rate("banyan_http_requests_refused_total")})`, "{{instance}}")], { unit: "ops" }),
          ts("Events", "Events at the roots in the last hour, by type.", [q("sum by (type) (increase(banyan_events_total[1h]))", "{{type}}")]),
          ts("Watchers", "Open watch streams (SSE and gRPC) per root.", [q("banyan_watch_watchers", "{{instance}}")]),
        ],
      },
    ],
  };
}

/** Every dashboard, by the file it is written to. */
export const DASHBOARDS: Record<string, () => DashboardSpec> = {
  "banyan-cluster.json": clusterDashboard,
  "banyan-job.json": jobDashboard,
  "banyan-user.json": userDashboard,
  "banyan-health.json": healthDashboard,
};
