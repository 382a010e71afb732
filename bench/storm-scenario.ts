import type { BenchCluster } from "./bench-cluster.js";
import { bucketsBetween, CounterGrowth, histogramQuantile, type RootMetrics } from "./root-metrics.js";

/** What a burst of keyframes cost the cluster: how long until whole, the worst latency, the bytes, the nodes it cost. */
export interface StormFigures {
  /** From the start of the window until every node was up (null: never, within the window). */
  whole_ms: number | null;
  /** The worst p99 sample→root latency over any half second of the window. */
  peak_p99_ms: number;
  /** Payload bytes of KEY frames the simulated nodes sent in the window. */
  key_bytes: number;
  /** Times a root marked a node down in the window (banyan_root_nodes_down_total). */
  nodes_marked_down: number;
  /** Uplinks (real relays and simulated streams) that failed over in the window. */
  failovers: number;
}

export type NodeReports = Awaited<ReturnType<BenchCluster["nodes"]>>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls the roots every 500 ms from `sinceMs` until `whole(reports)` holds or `timeoutMs` passed,
 * following latency, keyframe bytes and nodes marked down the whole time (a root that restarts in
 * the window starts its counters over; CounterGrowth allows for it).
 */
export async function watchWindow(
  cluster: BenchCluster,
  sinceMs: number,
  whole: (reports: NodeReports) => boolean,
  timeoutMs: number,
  onPoll: (reports: NodeReports) => void = () => undefined,
  /** The simulator's keyframe bytes when the window began (a start window: 0, taken before the simulator started, which sends its first keyframes at once). */
  keysBefore?: number,
): Promise<StormFigures> {
  const downs = new CounterGrowth("banyan_root_nodes_down_total");
  const keys0 = keysBefore ?? (await cluster.simStats()).keyBytes;
  const failovers0 = await cluster.failovers();
  let prev: RootMetrics = await cluster.rootMetrics();
  downs.add(prev);
  let peak = 0;
  let wholeAt: number | null = null;
  while (Date.now() - sinceMs < timeoutMs) {
    const reports = await cluster.nodes();
    onPoll(reports);
    const m = await cluster.rootMetrics();
    downs.add(m);
    // A restarted root's histogram starts over: compare each root only with itself, and only forward.
    const window = bucketsBetween(prev.map((p, k) => (m[k] !== undefined && (m[k]!.size === 0 || totalCount(m[k]!) < totalCount(p)) ? new Map() : p)), m);
    const p99 = histogramQuantile(window, 0.99);
    if (Number.isFinite(p99)) peak = Math.max(peak, p99);
    prev = m;
    if (whole(reports)) {
      wholeAt = Date.now();
      break;
    }
    await sleep(500);
  }
  return { whole_ms: wholeAt === null ? null : wholeAt - sinceMs, peak_p99_ms: peak, key_bytes: (await cluster.simStats()).keyBytes - keys0, nodes_marked_down: downs.add(await cluster.rootMetrics()), failovers: (await cluster.failovers()) - failovers0 };
}

function totalCount(m: Map<string, number>): number {
  return m.get('banyan_root_frame_latency_seconds_bucket{le="+Inf"}') ?? 0;
}

/** Root 1 SIGKILLed and started again: when its nodes are fresh anywhere, when all are back at it, and what the storm cost. */
export async function rootRestartScenario(
  cluster: BenchCluster,
  intervalMs: number,
  killed: ReadonlySet<string>,
  say: (l: string) => void,
): Promise<{ visible_ms: number; back_home_ms: number; nodes_lost: number; share: number } & StormFigures> {
  const root = cluster.plan.topology.roots[0]!;
  const trees = new Set(root.trees);
  const mine = [...cluster.plan.topology.nodes].filter(([name, n]) => trees.has(n.tree) && !killed.has(name)).map(([name]) => name);
  const killedAt = Date.now();
  let visibleAt = NaN;
  let fresh = 0;
  const restarting = cluster.restartRoot(0);
  const figures = await watchWindow(
    cluster,
    killedAt,
    (reports) => {
      const home = new Set((reports[0] ?? []).filter((n) => n.up && n.last_sample_ms > killedAt).map((n) => n.node));
      return mine.every((n) => home.has(n));
    },
    60_000 + 20 * intervalMs,
    (reports) => {
      const anywhere = new Set(reports.flat().filter((n) => n.up && n.last_sample_ms > killedAt).map((n) => n.node));
      fresh = mine.filter((n) => anywhere.has(n)).length;
      if (Number.isNaN(visibleAt) && fresh === mine.length) visibleAt = Date.now();
    },
  );
  await restarting;
  const result = { visible_ms: visibleAt - killedAt, back_home_ms: figures.whole_ms ?? NaN, nodes_lost: mine.length - fresh, share: mine.length / cluster.plan.topology.nodes.size, ...figures };
  say(
    `root restart: ${root.name}'s ${mine.length} nodes (${(result.share * 100).toFixed(1)} % of the cluster) fresh again after ${result.visible_ms} ms, all back at it after ${result.back_home_ms} ms, ${result.nodes_lost} lost; ` +
      `peak p99 ${result.peak_p99_ms.toFixed(0)} ms, ${(result.key_bytes / 1e6).toFixed(1)} MB of keyframes, ${result.nodes_marked_down} nodes marked down, ${result.failovers} failovers`,
  );
  return result;
}
