import { readFileSync } from "node:fs";
import { join } from "node:path";

/** What the node measures of its energy now: counters in joules (null: not measured here) and the BMC's power. */
export interface NodeEnergy {
  /** CPU packages (RAPL package zones) and DRAM (RAPL dram zones), joules so far. */
  readonly cpu: number | null;
  readonly dram: number | null;
  /** Each GPU's energy so far, by index. */
  readonly gpus: ReadonlyMap<string, number>;
  /** The whole node's power (the BMC's), watts. */
  readonly nodeWatts: number | null;
  /** The node's busy CPU time so far (/proc/stat: all but idle and iowait), seconds. */
  readonly busyCpuSeconds: number | null;
}

/** One running job as the attribution needs it: its CPU time so far and its GPUs. */
export interface JobLoad {
  readonly jobId: string;
  readonly cpuSeconds: number | null;
  readonly gpus: readonly string[];
}

export type EnergySource = "gpu" | "cpu" | "dram" | "node";

/** A tick's deltas longer than this are not attributed (a stalled agent, a suspended node): nothing is invented. */
const MAX_TICK_S = 30;

/**
 * A node's measured energy shared among the jobs running on it, tick by tick, as CEEMS and
 * Omnistat do: a job's GPUs' energy is its own; CPU-package and DRAM energy go by its share of the
 * node's busy CPU time in the tick; with a BMC, the node's remainder (its power × the tick, less what
 * RAPL and the GPUs measured) by the same share. Shares are capped so the jobs together never get
 * more than the node measured (a job's cgroup time and /proc/stat are read a moment apart); what no
 * job used stays the node's. A counter that went back (RAPL's wraps, a GPU reset) gives that tick
 * nothing. Cost per tick: O(jobs + GPUs); nothing allocated per job after its first tick.
 */
export class JobEnergy {
  private last: { atMs: number; e: NodeEnergy } | null = null;
  private readonly lastCpu = new Map<string, number>();
  private readonly joules = new Map<string, Record<EnergySource, number>>();
  /** Jobs with a GPU whose energy the node measures (a job without one has no GPU energy to say, not 0). */
  private readonly withGpu = new Set<string>();

  /** Attributes the energy the node measured since the last tick to the jobs running now. */
  tick(nowMs: number, e: NodeEnergy, jobs: readonly JobLoad[]): void {
    const prev = this.last;
    this.last = { atMs: nowMs, e };
    const dtS = prev === null ? 0 : (nowMs - prev.atMs) / 1000;
    // Each job's CPU time in the tick (none on its first tick).
    const dCpu = new Map<string, number>();
    for (const j of jobs) {
      const before = this.lastCpu.get(j.jobId);
      if (j.cpuSeconds !== null) {
        if (before !== undefined && j.cpuSeconds >= before) dCpu.set(j.jobId, j.cpuSeconds - before);
        this.lastCpu.set(j.jobId, j.cpuSeconds);
      }
      if (!this.joules.has(j.jobId)) this.joules.set(j.jobId, { gpu: 0, cpu: 0, dram: 0, node: 0 });
      if (j.gpus.some((g) => e.gpus.has(g))) this.withGpu.add(j.jobId);
    }
    if (prev === null || dtS <= 0 || dtS > MAX_TICK_S) return;
    const delta = (a: number | null, b: number | null): number | null => (a === null || b === null || a < b ? null : a - b);
    const dPkg = delta(e.cpu, prev.e.cpu);
    const dDram = delta(e.dram, prev.e.dram);
    const dBusy = delta(e.busyCpuSeconds, prev.e.busyCpuSeconds);
    // GPUs: each one's energy in the tick, to the job holding it (split if two say they do).
    const holders = new Map<string, number>();
    for (const j of jobs) for (const g of j.gpus) holders.set(g, (holders.get(g) ?? 0) + 1);
    let dGpuAll = 0;
    const dGpu = new Map<string, number>();
    for (const [g, now] of e.gpus) {
      const d = delta(now, prev.e.gpus.get(g) ?? null);
      if (d === null) continue;
      dGpu.set(g, d);
      dGpuAll += d;
    }
    const dNode = e.nodeWatts !== null && prev.e.nodeWatts !== null ? ((e.nodeWatts + prev.e.nodeWatts) / 2) * dtS : null;
    const rest = dNode === null ? null : Math.max(0, dNode - (dPkg ?? 0) - (dDram ?? 0) - dGpuAll);
    // CPU shares, capped so that they sum to at most 1.
    let total = 0;
    for (const j of jobs) total += dCpu.get(j.jobId) ?? 0;
    const scale = dBusy === null || dBusy <= 0 ? 0 : 1 / Math.max(dBusy, total);
    for (const j of jobs) {
      const acc = this.joules.get(j.jobId)!;
      const share = (dCpu.get(j.jobId) ?? 0) * scale;
      if (dPkg !== null) acc.cpu += dPkg * share;
      if (dDram !== null) acc.dram += dDram * share;
      if (rest !== null) acc.node += rest * share;
      for (const g of j.gpus) acc.gpu += (dGpu.get(g) ?? 0) / holders.get(g)!;
    }
  }

  /** A job's energy so far by source (only the sources this node measures). */
  of(jobId: string, measured: NodeEnergy | null = this.last?.e ?? null): Partial<Record<EnergySource, number>> {
    const acc = this.joules.get(jobId);
    if (acc === undefined || measured === null) return {};
    const out: Partial<Record<EnergySource, number>> = {};
    if (this.withGpu.has(jobId)) out.gpu = acc.gpu;
    if (measured.cpu !== null) out.cpu = acc.cpu;
    if (measured.dram !== null) out.dram = acc.dram;
    if (measured.nodeWatts !== null) out.node = acc.node;
    return out;
  }

  /** Forgets a job that ended. */
  forget(jobId: string): void {
    this.lastCpu.delete(jobId);
    this.joules.delete(jobId);
    this.withGpu.delete(jobId);
  }
}

/** The node's busy CPU seconds from /proc/stat's first line (user nice system irq softirq steal; guest is in user). */
export function busyCpuSeconds(proc: string, userHz = 100): number | null {
  let text: string;
  try {
    text = readFileSync(join(proc, "stat"), "latin1");
  } catch {
    return null;
  }
  const m = /^cpu\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)(?:\s+(\d+))?/.exec(text);
  if (m === null) return null;
  const [user, nice, system, , , irq, softirq] = [1, 2, 3, 4, 5, 6, 7].map((k) => Number(m[k]));
  const steal = Number(m[8] ?? 0);
  return (user! + nice! + system! + irq! + softirq! + steal) / userHz;
}
