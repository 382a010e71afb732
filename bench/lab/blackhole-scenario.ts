import type { BenchCluster } from "../bench-cluster.js";
import { CounterGrowth } from "../root-metrics.js";
import { subtreeOf } from "../../src/topology/topology-lookup.js";
import { LabFaults } from "./lab-faults.js";
import { CounterWatch, sleep, view, type View } from "./lab-view.js";

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
  /**
   * The real agent's counters (node_cpu_seconds_total, read from the roots every 100 ms) when it is
   * below the silent relay: how many series were followed, and how often one went backwards at the
   * roots (the goal: never). Null when the agent is elsewhere. (The simulated nodes replay a
   * template period, so their counters restart by design.)
   */
  agent_counters: { series: number; readings: number; backwards: number } | null;
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
  // The relay above the real agent if one may go silent (its counters are followed), then the one with the most real relays below.
  const agent = cluster.plan.realAgent;
  const ancestors = new Set<string>();
  for (let n = agent !== null ? t.nodes.get(agent)?.parent : undefined; n !== undefined && t.nodes.has(n); n = t.nodes.get(n)!.parent) ancestors.add(n);
  const above = (r: string): number => (ancestors.has(r) ? 1 : 0);
  const realBelow = (r: string): number => t.nodes.get(r)!.children.filter((c) => real.has(c)).length;
  const relay = [...pool].sort((a, b) => above(b) - above(a) || realBelow(b) - realBelow(a))[0]!;
  const children = subtreeOf(t, relay).slice(1);
  const counters = agent !== null && children.includes(agent) ? new CounterWatch(cluster, agent, "node_cpu_seconds_total") : null;
  const worker = cluster.relaysOf.get(relay)!;
  const faults = new LabFaults(lab);
  const down = new Set<string>();
  let maxStale = 0;
  const track = (v: View, now: number): void => {
    void counters?.read();
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
  await counters?.read();
  const result: BlackholeFigures = {
    relay,
    children: children.length,
    fault_s: faultS,
    first_fresh_ms: firstFresh,
    all_fresh_ms: allFresh,
    max_child_staleness_ms: failoverStale,
    children_marked_down: down.size,
    marked_down_by_roots: downs.add(await cluster.rootMetrics()),
    back_home_ms: backHome,
    max_staleness_moving_back_ms: maxStale,
    agent_counters: counters?.figures() ?? null,
  };
  const c = result.agent_counters;
  say(
    `blackhole: ${relay} back after ${faultS} s; all ${planned.length} children back under it after ${backHome} ms; oldest child sample meanwhile ${maxStale} ms; ${down.size} children shown down in all, ${result.marked_down_by_roots} nodes marked down by the roots' liveness (the silent relay is one)` +
      (c !== null ? `; the real agent's ${c.series} CPU counters at the roots went backwards ${c.backwards} times in ${c.readings} readings` : ""),
  );
  return result;
}
