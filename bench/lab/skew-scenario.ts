import type { BenchCluster } from "../bench-cluster.js";
import { CounterGrowth } from "../root-metrics.js";
import { droppedBetween, sleep, view, type View } from "./lab-view.js";

export interface SkewFigures {
  /** The node whose clock runs `skew_s` ahead, and the one as far behind (libfaketime, from their start). */
  ahead: string;
  behind: string;
  skew_s: number;
  /** Their newest sample's time at the roots less the time it was read, median over the window (≈ ±skew). */
  ahead_offset_ms: number;
  behind_offset_ms: number;
  /** Whether the roots showed each up at the end of the window. */
  ahead_up: boolean;
  behind_up: boolean;
  /** Nodes the roots' liveness marked down over the window (every node: the skewed ones included). */
  marked_down: number;
  /** Frames the roots dropped over the window, by reason. */
  roots_dropped: Record<string, number>;
  fault_s: number;
}

/** Reads for `faultS` what the roots make of two nodes whose clocks run ahead and behind (set from their start: BenchCluster.skew). */
export async function skewScenario(cluster: BenchCluster, faultS: number, say: (l: string) => void): Promise<SkewFigures | null> {
  const skewed = [...cluster.skew];
  const ahead = skewed.find(([, s]) => s.startsWith("+"));
  const behind = skewed.find(([, s]) => s.startsWith("-"));
  if (ahead === undefined || behind === undefined) {
    say("skew: no node ran with a skewed clock (too small a cluster)");
    return null;
  }
  const m0 = await cluster.rootMetrics();
  const downs = new CounterGrowth("banyan_root_nodes_down_total");
  downs.add(m0);
  const offsets: [number[], number[]] = [[], []];
  let last: View = new Map();
  for (const t0 = Date.now(); Date.now() - t0 < faultS * 1000; await sleep(500)) {
    const now = Date.now();
    last = await view(cluster);
    [ahead[0], behind[0]].forEach((n, k) => {
      const v = last.get(n);
      if (v !== undefined && v.lastSampleMs > 0) offsets[k]!.push(v.lastSampleMs - now);
    });
  }
  const m1 = await cluster.rootMetrics();
  const median = (xs: number[]): number => (xs.length === 0 ? NaN : [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!);
  const roots_dropped = droppedBetween(m0, m1);
  const skewS = Math.abs(Number.parseFloat(ahead[1]));
  const result: SkewFigures = {
    ahead: ahead[0],
    behind: behind[0],
    skew_s: skewS,
    ahead_offset_ms: median(offsets[0]),
    behind_offset_ms: median(offsets[1]),
    ahead_up: last.get(ahead[0])?.up === true,
    behind_up: last.get(behind[0])?.up === true,
    marked_down: downs.add(m1),
    roots_dropped,
    fault_s: faultS,
  };
  say(`skew: ${ahead[0]} ${ahead[1]} and ${behind[0]} ${behind[1]}: their newest sample at the roots ${result.ahead_offset_ms.toFixed(0)} and ${result.behind_offset_ms.toFixed(0)} ms from the reading's time, up ${result.ahead_up}/${result.behind_up}; ${result.marked_down} nodes marked down in ${faultS} s; roots dropped ${JSON.stringify(roots_dropped)}`);
  return result;
}
