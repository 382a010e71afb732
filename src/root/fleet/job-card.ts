import { z } from "zod";

/**
 * A job's report card: what it asked for beside what it used, across all its nodes, a score and the
 * site's notes. Pure functions of the job's parts (what each root holds of it), so a card computed
 * from parts gathered across roots is the card one root holding every node would compute.
 */

/** One GPU of a job on one node. */
export interface GpuPart {
  readonly gpu: string;
  /** Seconds it was busy for the job (banyan_job_gpu_busy_seconds_total); null without a GPU source. */
  readonly busy_seconds: number | null;
  readonly memory_peak_bytes: number | null;
}

/** One node of a job as its root holds it (the node's banyan_job_* series). */
export interface NodePart {
  readonly node: string;
  /** When the job started there (banyan_job_start_time_seconds), in seconds since the epoch. */
  readonly started_at_s: number | null;
  /** null: the node had no cgroup accounting for the job (unknown, never 0). */
  readonly cpu_seconds: number | null;
  readonly cpus_allocated: number | null;
  readonly memory_peak_bytes: number | null;
  readonly memory_limit_bytes: number | null;
  readonly io_read_bytes: number | null;
  readonly io_written_bytes: number | null;
  readonly gpus: readonly GpuPart[];
  /** Energy attributed to the job on this node, by source (gpu, cpu, dram, node), in joules. */
  readonly energy_joules: Readonly<Record<string, number>>;
}

/** What one root (or several, merged) holds of a job. */
export interface JobPart {
  readonly job_id: string;
  readonly user: string;
  readonly account: string;
  readonly partition: string;
  readonly running: boolean;
  /** When the root saw it first and last (ISO); the end is the last while it runs no more. */
  readonly first_seen: string;
  readonly last_seen: string;
  readonly time_limit_s: number | null;
  /** The job's nodes, all of them, and their hostlist, as Slurm said (banyan_job_nodes). */
  readonly nodes_expected: number | null;
  readonly nodelist: string | null;
  readonly nodes: readonly NodePart[];
  /** The roots whose parts these are. */
  readonly roots: readonly string[];
}

/** The figures a card has, by the names site rules use. Each null when unknown. */
export const CARD_METRICS = [
  "elapsed_s",
  "time_limit_s",
  "time_used_percent",
  "nodes",
  "cpu_efficiency_percent",
  "memory_used_percent",
  "memory_peak_bytes",
  "gpus",
  "gpu_utilization_percent",
  "idle_gpus",
  "gpu_memory_peak_bytes",
  "homogeneity_percent",
  "io_read_bytes",
  "io_written_bytes",
  "energy_joules",
  "score",
] as const;
export type CardMetric = (typeof CARD_METRICS)[number];

const CONDITIONS = { "<": (v: number, t: number) => v < t, "<=": (v: number, t: number) => v <= t, ">": (v: number, t: number) => v > t, ">=": (v: number, t: number) => v >= t } as const;

export const jobRuleSchema = z.strictObject({
  /** The rule's name (a note says which rule wrote it). */
  name: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, "expected a name of letters, digits, _ . -"),
  /** The card's figure it looks at. */
  metric: z.enum(CARD_METRICS),
  /** How the figure compares with the threshold for the note to be written. */
  condition: z.enum(["<", "<=", ">", ">="]),
  threshold: z.number(),
  /** Only for jobs that ran at least this long (a short job's figures say little). */
  minDurationS: z.number().nonnegative().default(0),
  /** Only for jobs of these partitions ([]: all). */
  partitions: z.array(z.string()).default([]),
  /** Only once the job has ended (figures such as time_used_percent mean little before). */
  endedOnly: z.boolean().default(false),
  /** The note, with {value}, {threshold}, {job}, {user} and {partition} filled in. */
  message: z.string().min(1).max(1000),
  severity: z.enum(["info", "warning"]).default("warning"),
});
export type JobRule = z.infer<typeof jobRuleSchema>;

export const scoreWeightsSchema = z.strictObject({
  /** CPU efficiency: CPU time used over CPUs allocated × elapsed. */
  cpu: z.number().nonnegative().default(1),
  /** GPU utilisation, mean over the job's GPUs (only for jobs with GPUs). */
  gpu: z.number().nonnegative().default(3),
  /** Memory: the peak over what was requested, on the node nearest its limit. */
  memory: z.number().nonnegative().default(0.5),
  /** Time: elapsed over the time limit (only once the job has ended). */
  time: z.number().nonnegative().default(0.5),
});
export type ScoreWeights = z.infer<typeof scoreWeightsSchema>;

/** The notes jobstats, LLview and SUPReMM sites write most, as defaults a site can replace. */
export const DEFAULT_JOB_RULES: readonly JobRule[] = [
  rule("idle-gpus", "idle_gpus", ">", 0, 600, "{value} of the job's GPUs were allocated and never used: ask for fewer GPUs (--gpus)"),
  rule("low-gpu-utilization", "gpu_utilization_percent", "<", 15, 3600, "the GPUs were busy {value} % of the time: ask for fewer GPUs, or a MIG slice where the site has them"),
  rule("low-cpu-efficiency", "cpu_efficiency_percent", "<", 25, 600, "the job used {value} % of the CPU time it was allocated: ask for fewer cores (--ntasks, --cpus-per-task), or check that it runs in parallel"),
  rule("memory-overrequested", "memory_used_percent", "<", 20, 600, "the job's memory peaked at {value} % of its request: ask for less (--mem) and it may start sooner"),
  { ...rule("time-overrequested", "time_used_percent", "<", 25, 600, "the job ran {value} % of its time limit: a closer --time lets the scheduler backfill it sooner"), endedOnly: true, severity: "info" },
  rule("uneven-nodes", "homogeneity_percent", "<", 50, 600, "the job's slowest node used {value} % of the CPU of its average node: check the load balance"),
];

function rule(name: string, metric: CardMetric, condition: keyof typeof CONDITIONS, threshold: number, minDurationS: number, message: string): JobRule {
  return { name, metric, condition, threshold, minDurationS, partitions: [], endedOnly: false, message, severity: "warning" };
}

export const DEFAULT_SCORE_WEIGHTS: ScoreWeights = { cpu: 1, gpu: 3, memory: 0.5, time: 0.5 };

export interface JobNote {
  readonly rule: string;
  readonly severity: "info" | "warning";
  readonly metric: CardMetric;
  readonly value: number;
  readonly threshold: number;
  readonly message: string;
}

export interface JobCard {
  readonly job_id: string;
  readonly user: string;
  readonly account: string;
  readonly partition: string;
  readonly state: "running" | "ended";
  readonly started_at: string;
  /** null while it runs. */
  readonly ended_at: string | null;
  /** Nodes whose figures the card holds, and the job's nodes as Slurm said (null: unknown). */
  readonly nodes: number;
  readonly nodes_expected: number | null;
  readonly nodelist: string | null;
  /** Some of the job's nodes or roots are missing: the figures are of a part of it. */
  readonly partial: boolean;
  readonly roots: readonly string[];
  /** Roots asked that did not answer (the card is partial). */
  readonly missing_roots: readonly string[];
  readonly metrics: Readonly<Record<CardMetric, number | null>>;
  readonly cpu: { readonly seconds: number | null; readonly allocated: number | null; readonly unaccounted_nodes: readonly string[] };
  readonly memory: { readonly peak_bytes: number | null; readonly requested_bytes: number | null };
  readonly gpu: {
    readonly count: number;
    /** GPUs allocated and never busy, as `node:index` (the first 64). */
    readonly idle: readonly string[];
    /** Each GPU's mean utilisation (the first 64, lowest first). */
    readonly per_gpu: readonly { readonly node: string; readonly gpu: string; readonly utilization_percent: number | null; readonly memory_peak_bytes: number | null }[];
  };
  /** The nodes with the least CPU per allocated CPU (the first 5): the straggler finder's view at the end. */
  readonly slowest_nodes: readonly { readonly node: string; readonly cpu_seconds: number }[];
  /** Energy attributed to the job on its nodes (banyan_job_energy_joules_total), and its emissions at the site's carbon intensity. */
  readonly energy: { readonly joules: number | null; readonly by_source: Readonly<Record<string, number>>; readonly kwh: number | null; readonly co2e_grams: number | null };
  /** Each part of the score (0-1) with its weight. */
  readonly score_parts: Readonly<Record<string, { readonly value: number; readonly weight: number }>>;
  readonly notes: readonly JobNote[];
}

const LIST_CAP = 64;

/** Merges the parts several roots hold of one job; a node two roots hold (it failed over) counts once, with its later figures. */
export function mergeParts(parts: readonly JobPart[]): JobPart | undefined {
  if (parts.length === 0) return undefined;
  const byNode = new Map<string, NodePart>();
  for (const p of parts) {
    for (const n of p.nodes) {
      const had = byNode.get(n.node);
      if (had === undefined || (n.cpu_seconds ?? -1) > (had.cpu_seconds ?? -1)) byNode.set(n.node, n);
    }
  }
  const first = parts[0]!;
  const pick = <T>(f: (p: JobPart) => T | null): T | null => parts.map(f).find((v) => v !== null) ?? null;
  return {
    job_id: first.job_id,
    user: first.user,
    account: pick((p) => (p.account === "" ? null : p.account)) ?? "",
    partition: first.partition,
    running: parts.some((p) => p.running),
    first_seen: parts.map((p) => p.first_seen).sort()[0]!,
    last_seen: parts.map((p) => p.last_seen).sort().at(-1)!,
    time_limit_s: pick((p) => p.time_limit_s),
    nodes_expected: pick((p) => p.nodes_expected),
    nodelist: pick((p) => p.nodelist),
    nodes: [...byNode.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)),
    roots: [...new Set(parts.flatMap((p) => p.roots))].sort(),
  };
}

const sumKnown = (xs: readonly (number | null)[]): number | null => (xs.length === 0 || xs.some((x) => x === null) ? null : xs.reduce<number>((a, x) => a + x!, 0));
/** The largest known figure (a loop: a 100,000-node job's list is past what a spread call takes). */
const maxKnown = (xs: readonly (number | null)[]): number | null => {
  let m: number | null = null;
  for (const x of xs) if (x !== null && (m === null || x > m)) m = x;
  return m;
};
const round = (v: number | null, digits = 1): number | null => (v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits);

/**
 * The card of a job from its (merged) part, at `nowMs` while it runs. The score is the weighted mean
 * of the parts known (each clamped to 0-1) × 100; the notes are the rules whose condition holds.
 */
export function jobCard(part: JobPart, rules: readonly JobRule[], weights: ScoreWeights, nowMs: number, missingRoots: readonly string[] = [], carbonGramsPerKwh: number | null = null): JobCard {
  const nodes = part.nodes;
  const firstStart = maxKnown(nodes.map((n) => (n.started_at_s === null ? null : -n.started_at_s)));
  const startMs = firstStart !== null ? -firstStart * 1000 : Date.parse(part.first_seen);
  const endMs = part.running ? nowMs : Date.parse(part.last_seen);
  const elapsedS = Math.max(0, (endMs - startMs) / 1000);
  const unaccounted = nodes.filter((n) => n.cpu_seconds === null).map((n) => n.node);
  const cpuSeconds = sumKnown(nodes.map((n) => n.cpu_seconds));
  const cpusAllocated = sumKnown(nodes.map((n) => n.cpus_allocated));
  const cpuEff = cpuSeconds !== null && cpusAllocated !== null && cpusAllocated > 0 && elapsedS > 0 ? (100 * cpuSeconds) / (cpusAllocated * elapsedS) : null;
  // The node nearest its limit: the request is per node, and the job is as tight as its tightest node.
  const memShares = nodes.map((n) => (n.memory_peak_bytes !== null && n.memory_limit_bytes !== null && n.memory_limit_bytes > 0 ? n.memory_peak_bytes / n.memory_limit_bytes : null));
  const memUsed = maxKnown(memShares);
  const gpus = nodes.flatMap((n) => n.gpus.map((g) => ({ node: n.node, ...g })));
  const gpuUtil = (g: GpuPart): number | null => (g.busy_seconds === null || elapsedS <= 0 ? null : Math.min(100, (100 * g.busy_seconds) / elapsedS));
  const utils = gpus.map(gpuUtil);
  const gpuMean = utils.length > 0 && utils.every((u) => u !== null) ? utils.reduce<number>((a, u) => a + u!, 0) / utils.length : null;
  const idle = gpus.filter((g) => g.busy_seconds === 0);
  // Homogeneity: the least CPU per allocated CPU of a node over the mean, for jobs on two nodes or more.
  const perCpu = nodes.filter((n) => n.cpu_seconds !== null).map((n) => ({ node: n.node, cpu_seconds: n.cpu_seconds!, per: n.cpu_seconds! / Math.max(1, n.cpus_allocated ?? 1) }));
  perCpu.sort((a, b) => a.per - b.per);
  const meanPer = perCpu.length > 0 ? perCpu.reduce((a, x) => a + x.per, 0) / perCpu.length : 0;
  const homogeneity = perCpu.length >= 2 && meanPer > 0 ? (100 * perCpu[0]!.per) / meanPer : null;
  const bySource: Record<string, number> = {};
  for (const n of nodes) for (const [s, j] of Object.entries(n.energy_joules)) bySource[s] = (bySource[s] ?? 0) + j;
  const energy = Object.keys(bySource).length > 0 ? Object.values(bySource).reduce((a, j) => a + j, 0) : null;
  const timeUsed = !part.running && part.time_limit_s !== null && part.time_limit_s > 0 ? (100 * elapsedS) / part.time_limit_s : null;

  const parts: Record<string, { value: number; weight: number }> = {};
  const add = (k: keyof ScoreWeights, percent: number | null): void => {
    if (percent !== null && weights[k] > 0) parts[k] = { value: Math.min(1, Math.max(0, percent / 100)), weight: weights[k] };
  };
  add("cpu", cpuEff);
  add("gpu", gpuMean);
  add("memory", memUsed === null ? null : memUsed * 100);
  add("time", timeUsed);
  const w = Object.values(parts).reduce((a, p) => a + p.weight, 0);
  const score = w > 0 ? (100 * Object.values(parts).reduce((a, p) => a + p.value * p.weight, 0)) / w : null;

  const metrics: Record<CardMetric, number | null> = {
    elapsed_s: round(elapsedS, 0),
    time_limit_s: part.time_limit_s,
    time_used_percent: round(timeUsed),
    nodes: nodes.length,
    cpu_efficiency_percent: round(cpuEff),
    memory_used_percent: round(memUsed === null ? null : memUsed * 100),
    memory_peak_bytes: maxKnown(nodes.map((n) => n.memory_peak_bytes)),
    gpus: gpus.length,
    gpu_utilization_percent: round(gpuMean),
    idle_gpus: gpus.length > 0 && gpus.every((g) => g.busy_seconds !== null) ? idle.length : null,
    gpu_memory_peak_bytes: maxKnown(gpus.map((g) => g.memory_peak_bytes)),
    homogeneity_percent: round(homogeneity),
    io_read_bytes: sumKnown(nodes.map((n) => n.io_read_bytes)),
    io_written_bytes: sumKnown(nodes.map((n) => n.io_written_bytes)),
    energy_joules: round(energy, 0),
    score: round(score, 0),
  };
  const partial = missingRoots.length > 0 || (part.nodes_expected !== null && nodes.length < part.nodes_expected);
  const fill = (text: string, value: number, threshold: number): string =>
    text.replace(/\{(value|threshold|job|user|partition)\}/g, (_, k: string) => (k === "value" ? String(value) : k === "threshold" ? String(threshold) : k === "job" ? part.job_id : k === "user" ? part.user : part.partition));
  const notes: JobNote[] = [];
  for (const r of rules) {
    const v = metrics[r.metric];
    if (v === null || elapsedS < r.minDurationS || (r.endedOnly && part.running)) continue;
    if (r.partitions.length > 0 && !r.partitions.includes(part.partition)) continue;
    if (CONDITIONS[r.condition](v, r.threshold)) notes.push({ rule: r.name, severity: r.severity, metric: r.metric, value: v, threshold: r.threshold, message: fill(r.message, v, r.threshold) });
  }
  const perGpu = gpus
    .map((g, k) => ({ node: g.node, gpu: g.gpu, utilization_percent: round(utils[k]!), memory_peak_bytes: g.memory_peak_bytes }))
    .sort((a, b) => (a.utilization_percent ?? -1) - (b.utilization_percent ?? -1))
    .slice(0, LIST_CAP);
  return {
    job_id: part.job_id,
    user: part.user,
    account: part.account,
    partition: part.partition,
    state: part.running ? "running" : "ended",
    started_at: new Date(startMs).toISOString(),
    ended_at: part.running ? null : new Date(endMs).toISOString(),
    nodes: nodes.length,
    nodes_expected: part.nodes_expected,
    nodelist: part.nodelist,
    partial,
    roots: part.roots,
    missing_roots: missingRoots,
    metrics,
    cpu: { seconds: cpuSeconds, allocated: cpusAllocated, unaccounted_nodes: unaccounted.slice(0, LIST_CAP) },
    memory: { peak_bytes: metrics.memory_peak_bytes, requested_bytes: maxKnown(nodes.map((n) => n.memory_limit_bytes)) },
    gpu: { count: gpus.length, idle: idle.slice(0, LIST_CAP).map((g) => `${g.node}:${g.gpu}`), per_gpu: perGpu },
    slowest_nodes: perCpu.slice(0, 5).map(({ node, cpu_seconds }) => ({ node, cpu_seconds })),
    energy: { joules: metrics.energy_joules, by_source: bySource, kwh: energy === null ? null : round(energy / 3.6e6, 4), co2e_grams: energy === null || carbonGramsPerKwh === null ? null : round((energy / 3.6e6) * carbonGramsPerKwh, 1) },
    score_parts: parts,
    notes,
  };
}
