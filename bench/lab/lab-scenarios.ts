import type { BenchCluster } from "../bench-cluster.js";
import { processStats } from "../process-stats.js";
import { bucketsBetween, CounterGrowth, histogramQuantile } from "../root-metrics.js";
import { OPS_HOST } from "./lab-plan.js";
import { LabFaults } from "./lab-faults.js";

/** What the roots say of each node, merged over the roots (up at any; its newest sample at any). */
interface NodeView {
  up: boolean;
  lastSampleMs: number;
}

export interface BlackholeFigures {
  relay: string;
  children: number;
  fault_s: number;
  /** Until the first child of the silent relay had a sample at a root taken after the fault. */
  first_fresh_ms: number;
  /** Until every child had one (NaN: not within 60 s). */
  all_fresh_ms: number;
  /** The oldest a child's newest sample at the roots got while it failed over (sampled every 100 ms). */
  max_child_staleness_ms: number;
  /** Children (not the silent relay) that the roots' API showed down (at every root that answered) at any time from the fault until they were back home. */
  children_marked_down: number;
  /** Nodes the roots' liveness marked down over the scenario (banyan_root_nodes_down_total): the silent relay itself is one. */
  marked_down_by_roots: number;
  /** After the relay's host came back: until it had all its planned children again (NaN: not within 120 s). */
  back_home_ms: number;
  /** The oldest a child's newest sample got while they moved back (a hole in the move back shows here). */
  max_staleness_moving_back_ms: number;
}

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

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type View = Map<string, NodeView> & { complete?: boolean };

/**
 * The roots' view of every node. A root that did not answer (busy, or its answer timed out) leaves
 * its nodes out: a node it holds would then show as the other root left it (down, after a move),
 * so a view missing a root says nothing of who is down (`complete` false).
 */
async function view(cluster: BenchCluster, skip?: string): Promise<View> {
  const reports = await cluster.nodes(skip);
  const out: View = new Map<string, NodeView>();
  out.complete = reports.every((r) => r.length > 0);
  for (const n of reports.flat()) {
    const v = out.get(n.node);
    if (v === undefined) out.set(n.node, { up: n.up, lastSampleMs: n.last_sample_ms });
    else {
      v.up ||= n.up;
      v.lastSampleMs = Math.max(v.lastSampleMs, n.last_sample_ms);
    }
  }
  return out;
}

function subtree(cluster: BenchCluster, n: string, out: string[] = []): string[] {
  out.push(n);
  for (const c of cluster.plan.topology.nodes.get(n)!.children) subtree(cluster, c, out);
  return out;
}

/**
 * A relay's host goes silent (its switch port down, its process frozen: no RST, no FIN) for
 * `faultS`, then comes back: how soon its children are fresh at the roots elsewhere, whether any
 * is shown down, and how soon they are back under it, with or without a hole.
 */
export async function blackholeScenario(cluster: BenchCluster, faultS: number, say: (l: string) => void): Promise<BlackholeFigures | null> {
  const { lab } = cluster.lab!;
  const t = cluster.plan.topology;
  const real = new Set(cluster.plan.relays);
  // A relay under another relay (its children fail over to their grandparent, a real relay), with the most real relays below it.
  const candidates = cluster.plan.relays.filter((r) => t.nodes.has(t.nodes.get(r)!.parent) && t.nodes.get(r)!.children.length > 0);
  const pool = candidates.length > 0 ? candidates : cluster.plan.relays.filter((r) => t.nodes.get(r)!.children.length > 0);
  if (pool.length === 0) {
    say("blackhole: no relay with children at this size");
    return null;
  }
  const relay = [...pool].sort((a, b) => t.nodes.get(b)!.children.filter((c) => real.has(c)).length - t.nodes.get(a)!.children.filter((c) => real.has(c)).length)[0]!;
  const children = subtree(cluster, relay).slice(1);
  const worker = cluster.relaysOf.get(relay)!;
  const faults = new LabFaults(lab);
  const down = new Set<string>();
  let maxStale = 0;
  const track = (v: View, now: number): void => {
    for (const c of children) {
      const n = v.get(c);
      if (n === undefined) continue;
      if (!n.up && v.complete === true) down.add(c);
      maxStale = Math.max(maxStale, now - n.lastSampleMs);
    }
  };
  const downs = new CounterGrowth("banyan_root_nodes_down_total");
  downs.add(await cluster.rootMetrics());
  const t0 = Date.now();
  faults.silence(relay);
  process.kill(worker.proc.pid!, "SIGSTOP");
  let firstFresh = NaN;
  let allFresh = NaN;
  while (Date.now() - t0 < faultS * 1000) {
    const now = Date.now();
    const v = await view(cluster);
    track(v, now);
    const fresh = children.filter((c) => (v.get(c)?.lastSampleMs ?? 0) > t0).length;
    if (fresh > 0 && Number.isNaN(firstFresh)) firstFresh = now - t0;
    if (fresh === children.length && Number.isNaN(allFresh)) allFresh = now - t0;
    await sleep(100);
  }
  const failoverStale = maxStale;
  say(`blackhole: ${relay} silent (port down, SIGSTOP) with ${children.length} nodes below; first child fresh elsewhere after ${firstFresh} ms, all after ${allFresh} ms; oldest child sample ${failoverStale} ms; ${down.size} children shown down`);
  maxStale = 0;
  process.kill(worker.proc.pid!, "SIGCONT");
  faults.restore(relay);
  const t1 = Date.now();
  // Back home: every planned child (a real relay's or a simulated stream's uplink) attached to it again.
  const planned = t.nodes.get(relay)!.children.filter((c) => c !== cluster.plan.realAgent);
  let backHome = NaN;
  while (Date.now() - t1 < 120_000) {
    track(await view(cluster), Date.now());
    const parents = await cluster.parents();
    if (planned.every((c) => parents.get(c) === relay)) {
      backHome = Date.now() - t1;
      break;
    }
    await sleep(200);
  }
  // A little longer: a hole in the move back shows after it.
  for (const end = Date.now() + 3000; Date.now() < end; await sleep(100)) track(await view(cluster), Date.now());
  const result: BlackholeFigures = { relay, children: children.length, fault_s: faultS, first_fresh_ms: firstFresh, all_fresh_ms: allFresh, max_child_staleness_ms: failoverStale, children_marked_down: down.size, marked_down_by_roots: downs.add(await cluster.rootMetrics()), back_home_ms: backHome, max_staleness_moving_back_ms: maxStale };
  say(`blackhole: ${relay} back after ${faultS} s; all ${planned.length} children back under it after ${backHome} ms; oldest child sample meanwhile ${maxStale} ms; ${down.size} children shown down in all, ${result.marked_down_by_roots} nodes marked down by the roots' liveness (the silent relay is one)`);
  return result;
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
  const dropped0 = droppedByReason(m0);
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
  const dropped1 = droppedByReason(m1);
  const roots_dropped: Record<string, number> = {};
  for (const [reason, n] of dropped1) if (n - (dropped0.get(reason) ?? 0) > 0) roots_dropped[reason] = n - (dropped0.get(reason) ?? 0);
  const growth = Math.max(0, ...rssMax.map((r, k) => r - rss0[k]!)) / 2 ** 20;
  const result: PartitionFigures = { rack: rack.name, rack_hosts: rack.hosts.length, rack_nodes: rack.nodes.length, fault_s: faultS, outside_marked_down: down.size, marked_down_by_roots: downs.add(m1), relay_rss_growth_mb: growth, whole_ms: whole, roots_dropped };
  say(`partition: ${rack.name} (${rack.hosts.length} hosts, ${rack.nodes.length} nodes) cut off for ${faultS} s; ${down.size} nodes outside shown down, ${result.marked_down_by_roots} marked down by the roots' liveness (the rack has ${rack.nodes.length}); its relays grew at most ${growth.toFixed(1)} MB; whole ${whole} ms after the heal; roots dropped ${JSON.stringify(roots_dropped)}`);
  return result;
}

function droppedByReason(metrics: Map<string, number>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of metrics) {
    for (const [k, v] of m) {
      const r = /^banyan_root_frames_dropped_total\{reason="([^"]+)"\}$/.exec(k);
      if (r) out.set(r[1]!, (out.get(r[1]!) ?? 0) + v);
    }
  }
  return out;
}

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
    const top = [...window].reverse().find(([, c], k, arr) => c > (arr[k + 1]?.[1] ?? 0));
    const level = { percent, marked_down: downs.add(m1), p99_ms: histogramQuantile(window, 0.99), max_ms: top !== undefined ? top[0] * 1000 : NaN };
    levels.push(level);
    say(`lossy: ${percent} % of packets dropped each way on every link for ${faultS} s: ${level.marked_down} nodes marked down, sample→root p99 ${level.p99_ms.toFixed(0)} ms, max ≤ ${level.max_ms} ms`);
    // Whatever the loss did, the next level starts from a whole cluster.
    await sleep(3000);
  }
  return { levels, fault_s: faultS };
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
}

/**
 * A root's host cut off from every other host for `faultS` (its process runs on): its trees' nodes
 * fail over to the other roots; after the heal they move back. Freshness is read at the roots that
 * answer (the bench, on its own host, is cut off from the isolated root too).
 */
export async function rootIsolatedScenario(cluster: BenchCluster, faultS: number, say: (l: string) => void): Promise<RootIsolatedFigures | null> {
  const { lab } = cluster.lab!;
  if (cluster.roots.length < 2) {
    say("root-isolated: needs two roots or more (--roots)");
    return null;
  }
  const root = cluster.plan.topology.roots[0]!;
  const t = cluster.plan.topology;
  const mine = [...t.nodes.keys()].filter((n) => {
    let x = n;
    while (t.nodes.has(x)) x = t.nodes.get(x)!.parent;
    return x === root.name;
  });
  const faults = new LabFaults(lab);
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
  const result: RootIsolatedFigures = { root: root.name, nodes: mine.length, fault_s: faultS, all_fresh_ms: allFresh, max_staleness_ms: failoverStale, back_ms: back, max_staleness_moving_back_ms: maxStale };
  say(`root-isolated: ${root.name} cut off for ${faultS} s: its ${mine.length} nodes fresh at the other roots after ${allFresh} ms (oldest sample ${failoverStale} ms); back at it ${back} ms after the heal (oldest sample meanwhile ${maxStale} ms)`);
  return result;
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
  const d0 = droppedByReason(m0);
  const roots_dropped: Record<string, number> = {};
  for (const [reason, n] of droppedByReason(m1)) if (n - (d0.get(reason) ?? 0) > 0) roots_dropped[reason] = n - (d0.get(reason) ?? 0);
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
