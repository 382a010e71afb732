import type { BenchCluster } from "../bench-cluster.js";
import { bucketsBetween, CounterGrowth, histogramMaxMs, histogramQuantile } from "../root-metrics.js";
import { LabFaults } from "./lab-faults.js";
import { OPS_HOST } from "./lab-plan.js";
import { sleep } from "./lab-view.js";

// Every link of the trees worse for a while: packets lost (lossy), packets late (latency).

export interface LossyFigures {
  /** Per loss level: nodes the roots marked down, p99 and max sample→root latency over the window. */
  levels: { percent: number; marked_down: number; p99_ms: number; max_ms: number }[];
  fault_s: number;
}

/**
 * Packet loss on every link of the trees (every host's switch port but the bench's own), `faultS`
 * at each level in turn: nodes marked down (the goal at 1 %: none) and the sample→root latency.
 */
export async function lossyScenario(cluster: BenchCluster, faultS: number, percents: readonly number[], say: (l: string) => void): Promise<LossyFigures> {
  const { lab, layout } = cluster.lab!;
  const faults = new LabFaults(lab);
  const hosts = layout.hosts.filter((h) => h !== OPS_HOST);
  const levels: LossyFigures["levels"] = [];
  for (const percent of percents) {
    const m0 = await cluster.rootMetrics();
    const downs = new CounterGrowth("banyan_root_nodes_down_total");
    downs.add(m0);
    faults.loss(hosts, percent);
    await sleep(faultS * 1000);
    const m1 = await cluster.rootMetrics();
    faults.loss([], 0);
    const window = bucketsBetween(m0, m1);
    const level = { percent, marked_down: downs.add(m1), p99_ms: histogramQuantile(window, 0.99), max_ms: histogramMaxMs(window) };
    levels.push(level);
    say(`lossy: ${percent} % of packets dropped each way on every link for ${faultS} s: ${level.marked_down} nodes marked down, sample→root p99 ${level.p99_ms.toFixed(0)} ms, max ≤ ${level.max_ms} ms`);
    // Whatever the loss did, the next level starts from a whole cluster.
    await sleep(3000);
  }
  return { levels, fault_s: faultS };
}

export interface LatencyFigures {
  /** Added to every packet on arrival at every host (each hop one way). */
  delay_ms: number;
  /** Hops from a simulated leaf to its root through the real relays. */
  hops: number;
  /** Sample→root latency before (the steady window) and under the delay. */
  p99_before_ms: number;
  p99_ms: number;
  p50_ms: number;
  marked_down: number;
  fault_s: number;
}

/** `ms` more on every link (a WAN, a deep tree) for `faultS`: the sample→root latency against hops × ms. */
export async function latencyScenario(cluster: BenchCluster, faultS: number, ms: number, p99BeforeMs: number, say: (l: string) => void): Promise<LatencyFigures> {
  const { lab, layout } = cluster.lab!;
  const faults = new LabFaults(lab);
  const hosts = layout.hosts.filter((h) => h !== OPS_HOST);
  await faults.delay(hosts, ms);
  // The queues the delay builds settle within a few intervals; measured after them.
  await sleep(3000);
  const m0 = await cluster.rootMetrics();
  const downs = new CounterGrowth("banyan_root_nodes_down_total");
  downs.add(m0);
  await sleep(faultS * 1000);
  const m1 = await cluster.rootMetrics();
  await faults.delay([], 0);
  const window = bucketsBetween(m0, m1);
  const hops = cluster.plan.realDepth + 1;
  const result: LatencyFigures = { delay_ms: ms, hops, p99_before_ms: p99BeforeMs, p99_ms: histogramQuantile(window, 0.99), p50_ms: histogramQuantile(window, 0.5), marked_down: downs.add(m1), fault_s: faultS };
  say(`latency: +${ms} ms on arrival at every host for ${faultS} s: sample→root p50 ${result.p50_ms.toFixed(0)} ms, p99 ${result.p99_ms.toFixed(0)} ms (before ${p99BeforeMs.toFixed(0)} ms; ${hops} hops × ${ms} ms = ${hops * ms} ms); ${result.marked_down} nodes marked down`);
  return result;
}
