import type { BenchCluster } from "../bench-cluster.js";
import { processStats } from "../process-stats.js";
import { CounterGrowth } from "../root-metrics.js";
import { nodesOfRoot } from "../../src/topology/topology-lookup.js";
import type { RootRecord } from "../../src/topology/topology-file.js";
import { LabFaults } from "./lab-faults.js";
import { LabPrometheus } from "./lab-prometheus.js";
import { droppedBetween, sleep, view, type View } from "./lab-view.js";

// Hosts cut off from the rest of the lab: a rack (partition), a root (root-isolated).

export interface PartitionFigures {
  rack: string;
  rack_hosts: number;
  rack_nodes: number;
  fault_s: number;
  /** Nodes outside the rack the roots' API showed down (at every root that answered) at any time (the goal: 0). */
  outside_marked_down: number;
  /** Nodes the roots' liveness marked down over the scenario (banyan_root_nodes_down_total): the rack's, at most once each. */
  marked_down_by_roots: number;
  /** The rack's real relays' RSS growth over the partition, the largest, MB. */
  relay_rss_growth_mb: number;
  /** After the heal: until every node of the rack was up with a sample taken after the heal (NaN: not within 120 s). */
  whole_ms: number;
  /** Frames the roots dropped over the scenario, by reason. */
  roots_dropped: Record<string, number>;
}

/**
 * A rack (a real relay's subtree: its relays, its simulated nodes' host, maybe the agent) cut off
 * from every other host for `faultS`, then healed: nodes outside never shown down, the rack's
 * relays' memory bounded, and how soon the rack is whole again.
 */
export async function partitionScenario(cluster: BenchCluster, faultS: number, say: (l: string) => void): Promise<PartitionFigures | null> {
  const { lab, layout } = cluster.lab!;
  const rack = [...layout.racks].filter((r) => r.top !== null).sort((a, b) => b.hosts.length - a.hosts.length)[0];
  if (rack === undefined || layout.racks.length < 2) {
    say("partition: the cluster has a single rack at this size (more nodes or more real relays make racks)");
    return null;
  }
  const inside = new Set(rack.nodes);
  const outside = [...cluster.plan.topology.nodes.keys()].filter((n) => !inside.has(n));
  const relays = rack.hosts.filter((h) => cluster.relaysOf.has(h));
  const pids = relays.map((r) => cluster.relaysOf.get(r)!.proc.pid!);
  const rss0 = pids.map((p) => processStats(p).rssBytes);
  const rssMax = [...rss0];
  const m0 = await cluster.rootMetrics();
  const downs = new CounterGrowth("banyan_root_nodes_down_total");
  downs.add(m0);
  const faults = new LabFaults(lab);
  const down = new Set<string>();
  const t0 = Date.now();
  faults.partition(rack.hosts);
  while (Date.now() - t0 < faultS * 1000) {
    const v = await view(cluster);
    if (v.complete === true) for (const n of outside) if (v.get(n)?.up === false) down.add(n);
    pids.forEach((p, k) => (rssMax[k] = Math.max(rssMax[k]!, processStats(p).rssBytes)));
    await sleep(200);
  }
  faults.heal();
  const t1 = Date.now();
  let whole = NaN;
  while (Date.now() - t1 < 120_000) {
    const v = await view(cluster);
    if (v.complete === true) for (const n of outside) if (v.get(n)?.up === false) down.add(n);
    if (rack.nodes.every((n) => v.get(n)?.up === true && v.get(n)!.lastSampleMs > t1)) {
      whole = Date.now() - t1;
      break;
    }
    await sleep(100);
  }
  const m1 = await cluster.rootMetrics();
  const roots_dropped = droppedBetween(m0, m1);
  const growth = Math.max(0, ...rssMax.map((r, k) => r - rss0[k]!)) / 2 ** 20;
  const result: PartitionFigures = { rack: rack.name, rack_hosts: rack.hosts.length, rack_nodes: rack.nodes.length, fault_s: faultS, outside_marked_down: down.size, marked_down_by_roots: downs.add(m1), relay_rss_growth_mb: growth, whole_ms: whole, roots_dropped };
  say(`partition: ${rack.name} (${rack.hosts.length} hosts, ${rack.nodes.length} nodes) cut off for ${faultS} s; ${down.size} nodes outside shown down, ${result.marked_down_by_roots} marked down by the roots' liveness (the rack has ${rack.nodes.length}); its relays grew at most ${growth.toFixed(1)} MB; whole ${whole} ms after the heal; roots dropped ${JSON.stringify(roots_dropped)}`);
  return result;
}

export interface RootIsolatedFigures {
  root: string;
  nodes: number;
  fault_s: number;
  /** Until every node of the root's trees had a sample taken after the cut at another root (NaN: not within 60 s). */
  all_fresh_ms: number;
  /** The oldest a node's newest sample at the other roots got meanwhile. */
  max_staleness_ms: number;
  /** After the heal: until the root showed every node of its trees up and fresh again (NaN: not within 120 s). */
  back_ms: number;
  /** The oldest a node's newest sample got (at any root) while they moved back: a hole shows here. */
  max_staleness_moving_back_ms: number;
  /**
   * What a real Prometheus on the bench's host (scraping every root each second) stored of these
   * nodes: the longest time without a sample while the root was cut off, and from the heal until
   * they were back and 5 s more (≈ 1 s: no hole). NaN without Prometheus.
   */
  prometheus_max_gap_cut_ms: number;
  prometheus_max_gap_moving_back_ms: number;
}

/**
 * A root's host cut off from every other host for `faultS` (its process runs on): its trees' nodes
 * fail over to the other roots; after the heal they move back. Freshness is read at the roots that
 * answer (the bench, on its own host, is cut off from the isolated root too), and from a real
 * Prometheus on the bench's host scraping every root each second (what a site's store keeps).
 */
export async function rootIsolatedScenario(cluster: BenchCluster, faultS: number, say: (l: string) => void): Promise<RootIsolatedFigures | null> {
  const { lab } = cluster.lab!;
  if (cluster.roots.length < 2) {
    say("root-isolated: needs two roots or more (--roots)");
    return null;
  }
  const root = cluster.plan.topology.roots[0]!;
  const t = cluster.plan.topology;
  const mine = nodesOfRoot(t, root);
  const faults = new LabFaults(lab);
  const prometheus = await LabPrometheus.start(t, cluster.plan.portBase);
  if (prometheus === null) say("root-isolated: prometheus not installed: what a store keeps is not measured");
  try {
    return await isolate(cluster, faultS, say, root, mine, faults, prometheus);
  } finally {
    await prometheus?.stop();
  }
}

async function isolate(cluster: BenchCluster, faultS: number, say: (l: string) => void, root: RootRecord, mine: readonly string[], faults: LabFaults, prometheus: LabPrometheus | null): Promise<RootIsolatedFigures> {
  // Each node's newest sample at any root: a root that does not answer (the isolated one) keeps what it said last.
  const newest = new Map<string, number>();
  const note = (v: View): void => {
    for (const n of mine) newest.set(n, Math.max(newest.get(n) ?? 0, v.get(n)?.lastSampleMs ?? 0));
  };
  note(await view(cluster));
  let maxStale = 0;
  const t0 = Date.now();
  faults.partition([root.name]);
  let allFresh = NaN;
  while (Date.now() - t0 < faultS * 1000) {
    const now = Date.now();
    // The bench cannot reach the isolated root either: not asked (each poll would wait 2 s for it).
    const v = await view(cluster, root.name);
    note(v);
    for (const n of mine) maxStale = Math.max(maxStale, now - newest.get(n)!);
    if (Number.isNaN(allFresh) && mine.every((n) => (v.get(n)?.lastSampleMs ?? 0) > t0)) allFresh = now - t0;
    await sleep(100);
  }
  const failoverStale = maxStale;
  faults.heal();
  const t1 = Date.now();
  maxStale = 0;
  let back = NaN;
  while (Date.now() - t1 < 120_000) {
    const now = Date.now();
    const reports = await cluster.nodes();
    const v = await view(cluster);
    note(v);
    for (const n of mine) maxStale = Math.max(maxStale, now - newest.get(n)!);
    const atRoot = new Map((reports[0] ?? []).map((n) => [n.node, n]));
    if (mine.every((n) => atRoot.get(n)?.up === true && atRoot.get(n)!.last_sample_ms > t1)) {
      back = now - t1;
      break;
    }
    await sleep(200);
  }
  // What the store kept: 5 s past the move back (or the 120 s waited), then read back.
  const end = (Number.isNaN(back) ? Date.now() : t1 + back) + 5000;
  await sleep(Math.max(0, end - Date.now()) + 1500);
  const worst = (gaps: Map<string, number> | undefined): number => (gaps === undefined || gaps.size === 0 ? NaN : Math.max(...gaps.values()));
  const cutGap = worst(await prometheus?.longestGaps(mine, t0, t1));
  const backGap = worst(await prometheus?.longestGaps(mine, t1, end));
  const result: RootIsolatedFigures = {
    root: root.name,
    nodes: mine.length,
    fault_s: faultS,
    all_fresh_ms: allFresh,
    max_staleness_ms: failoverStale,
    back_ms: back,
    max_staleness_moving_back_ms: maxStale,
    prometheus_max_gap_cut_ms: cutGap,
    prometheus_max_gap_moving_back_ms: backGap,
  };
  say(
    `root-isolated: ${root.name} cut off for ${faultS} s: its ${mine.length} nodes fresh at the other roots after ${allFresh} ms (oldest sample ${failoverStale} ms); back at it ${back} ms after the heal (oldest sample meanwhile ${maxStale} ms); ` +
      `Prometheus' longest gap per node ${cutGap} ms while cut off, ${backGap} ms through the move back`,
  );
  return result;
}
