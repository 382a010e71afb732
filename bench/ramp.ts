import type { BenchOptions } from "./bench-options.js";
import { runBench, type BenchResult } from "./run-bench.js";

/** One size of a ramp: whether steady state held there, and why not. */
export interface RampStep {
  nodes: number;
  held: boolean;
  why: string | null;
  p99_ms: number;
  nodes_marked_down: number;
  start_whole_ms: number | null;
}

export interface RampResult {
  steps: RampStep[];
  /** The largest size that held (null: not even the first). */
  largest_held: number | null;
  results: BenchResult[];
}

/** Why steady state did not hold at this size, or null when it did: every node up, none marked down, p99 < 1 s. */
export function rampVerdict(r: BenchResult): string | null {
  if (r.start.whole_ms === null) return "not every node came up";
  const downs = r.start.nodes_marked_down + r.nodes_marked_down;
  if (downs > 0) return `${downs} nodes marked down`;
  if (!(r.latency_ms.p99 < 1000)) return `p99 ${Number.isFinite(r.latency_ms.p99) ? Math.round(r.latency_ms.p99) : "n/a"} ms`;
  return null;
}

/**
 * Grows the cluster from `o.nodes`, doubling, each size a fresh steady run, until steady state no
 * longer holds (or `maxNodes`); reports the largest size that held.
 */
export async function runRamp(o: BenchOptions, maxNodes: number, say: (line: string) => void, progress: (label: string, fraction: number) => void): Promise<RampResult> {
  const steps: RampStep[] = [];
  const results: BenchResult[] = [];
  let largest: number | null = null;
  for (let nodes = o.nodes; nodes <= maxNodes; nodes *= 2) {
    say(`ramp: ${nodes} nodes`);
    let r: BenchResult;
    try {
      r = await runBench({ ...o, nodes, scenario: "steady", baselinePrometheus: false }, say, progress);
    } catch (err) {
      const why = `the run failed: ${(err as Error).message}`;
      steps.push({ nodes, held: false, why, p99_ms: NaN, nodes_marked_down: NaN, start_whole_ms: null });
      say(`ramp: ${nodes} nodes did not hold: ${why}`);
      break;
    }
    const why = rampVerdict(r);
    steps.push({ nodes, held: why === null, why, p99_ms: r.latency_ms.p99, nodes_marked_down: r.start.nodes_marked_down + r.nodes_marked_down, start_whole_ms: r.start.whole_ms });
    results.push(r);
    say(`ramp: ${nodes} nodes ${why === null ? "held" : `did not hold: ${why}`}`);
    if (why !== null) break;
    largest = nodes;
  }
  return { steps, largest_held: largest, results };
}

export function formatRamp(r: RampResult): string {
  const lines = r.steps.map((s) => `  ${String(s.nodes).padStart(7)} nodes  ${s.held ? "held        " : "did not hold"}  p99 ${Number.isFinite(s.p99_ms) ? Math.round(s.p99_ms) : "n/a"} ms, ${s.nodes_marked_down} marked down, all up after ${s.start_whole_ms ?? "n/a"} ms${s.why ? ` (${s.why})` : ""}`);
  return [`ramp: the largest size that held steady state: ${r.largest_held ?? "none"} nodes`, ...lines].join("\n") + "\n";
}
