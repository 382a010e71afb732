import { join } from "node:path";
import { makeCertificates } from "../../src/tools/certs/index.js";
import type { BenchCluster } from "../bench-cluster.js";
import type { BenchOptions } from "../bench-options.js";
import { blackholeScenario, type BlackholeFigures } from "./blackhole-scenario.js";
import { partitionScenario, rootIsolatedScenario, type PartitionFigures, type RootIsolatedFigures } from "./cut-scenarios.js";
import { LabFaults } from "./lab-faults.js";
import { latencyScenario, lossyScenario, type LatencyFigures, type LossyFigures } from "./link-scenarios.js";
import { skewScenario, type SkewFigures } from "./skew-scenario.js";

/**
 * --hosts netns in a bench's result: the emulated hosts, the bytes their switch ports counted over
 * the steady window (TCP/IP and TLS included: what the network carries), per node and interval,
 * and the network's fault scenarios.
 */
export interface LabFigures {
  run_id: string;
  hosts: number;
  racks: number;
  subnet: string;
  wire_leaf_bytes_per_node_per_interval: number;
  wire_root_bytes_per_node_per_interval: number;
  wire_agent_bytes_per_interval: number;
  blackhole: BlackholeFigures | null;
  partition: PartitionFigures | null;
  root_isolated: RootIsolatedFigures | null;
  lossy: LossyFigures | null;
  latency: LatencyFigures | null;
  skew: SkewFigures | null;
  /** The first root's link capped each way from before the start: the start's figures under the cap are `start`. */
  thin_uplink: { root: string; mbit: number } | null;
}

type Phase = <T>(label: string, usualS: number, run: () => Promise<T>) => Promise<T>;
type WireCounts = Map<string, { sent: number; received: number }>;

/**
 * What a lab run sets before its cluster starts: mutual TLS on the tree (a certificate per node
 * from `banyan certs`, as a site runs it), the first root's link capped (thin-uplink: through the
 * start in one tick), the two skewed clocks (skew: from the processes' start).
 */
export async function prepareLab(cluster: BenchCluster, o: BenchOptions, dir: string, say: (line: string) => void): Promise<LabFigures["thin_uplink"]> {
  const { lab } = cluster.lab!;
  const plan = cluster.plan;
  if (o.treeTls) {
    const began = Date.now();
    cluster.tlsDir = join(dir, "tls");
    await makeCertificates({ topology: cluster.topologyPath, out: cluster.tlsDir, days: "2" });
    say(`tls: mutual TLS on the tree, ${plan.topology.nodes.size + plan.topology.roots.length} certificates from banyan certs in ${Date.now() - began} ms`);
  }
  if (o.scenario === "skew") {
    // The real agent's clock 30 s ahead, the deepest real relay's 30 s behind.
    if (plan.realAgent !== null) cluster.skew.set(plan.realAgent, "+30s");
    const deepest = plan.relays.at(-1);
    if (deepest !== undefined) cluster.skew.set(deepest, "-30s");
    say(`skew: ${[...cluster.skew].map(([n, s]) => `${n} ${s}`).join(", ")} (libfaketime, the wall clock only)`);
  }
  if (o.scenario !== "thin-uplink") return null;
  const thin = { root: plan.topology.roots[0]!.name, mbit: o.uplinkMbit };
  new LabFaults(lab).rate(thin.root, thin.mbit);
  say(`thin-uplink: ${thin.root}'s link capped at ${thin.mbit} Mbit/s each way (tc tbf) from before the start`);
  return thin;
}

/**
 * The lab's figures after the steady window: the wire bytes between two readings of the switch's
 * counters (`ticks` intervals; Banyan's own counts beside them in the line it says), then the
 * network scenario `o.scenario` names.
 */
export async function labFigures(
  cluster: BenchCluster,
  o: BenchOptions,
  wire: { before: WireCounts; after: WireCounts; ticks: number; simNodes: number },
  banyanCounts: { leafBytes: number; rootLinkBytes: number; gzipBytes: number; p99Ms: number },
  thin: LabFigures["thin_uplink"],
  phase: Phase,
  say: (line: string) => void,
): Promise<LabFigures> {
  const { lab, layout } = cluster.lab!;
  const plan = cluster.plan;
  const delta = (host: string, way: "sent" | "received"): number => (wire.after.get(host)?.[way] ?? 0) - (wire.before.get(host)?.[way] ?? 0);
  const rackHosts = layout.racks.filter((r) => r.streams.length > 0).map((r) => r.name);
  const f: LabFigures = {
    run_id: lab.runId,
    hosts: lab.hosts.length,
    racks: layout.racks.length,
    subnet: lab.subnet,
    wire_leaf_bytes_per_node_per_interval: rackHosts.reduce((n, h) => n + delta(h, "sent"), 0) / wire.simNodes / wire.ticks,
    wire_root_bytes_per_node_per_interval: plan.topology.roots.reduce((n, r) => n + delta(r.name, "received"), 0) / o.nodes / wire.ticks,
    wire_agent_bytes_per_interval: plan.realAgent === null ? NaN : delta(plan.realAgent, "sent") / wire.ticks,
    blackhole: null,
    partition: null,
    root_isolated: null,
    lossy: null,
    latency: null,
    skew: null,
    thin_uplink: thin,
  };
  const b = banyanCounts;
  say(`wire (the switch ports' counters, TCP/IP included): ${f.wire_leaf_bytes_per_node_per_interval.toFixed(0)} B per node per interval from the leaves (Banyan counts ${b.leafBytes.toFixed(0)}), ${f.wire_root_bytes_per_node_per_interval.toFixed(0)} B into the roots (Banyan counts ${b.rootLinkBytes.toFixed(0)}), the real agent ${f.wire_agent_bytes_per_interval.toFixed(0)} B; a gzip scrape ${b.gzipBytes.toFixed(0)} B`);
  const s = o.faultS;
  if (o.scenario === "blackhole") f.blackhole = await phase("blackhole", s + 20, () => blackholeScenario(cluster, s, say));
  if (o.scenario === "partition") f.partition = await phase("partition", s + 15, () => partitionScenario(cluster, s, say));
  if (o.scenario === "root-isolated") f.root_isolated = await phase("isolated", s + 20, () => rootIsolatedScenario(cluster, s, say));
  if (o.scenario === "skew") f.skew = await phase("skew", s, () => skewScenario(cluster, s, say));
  if (o.scenario === "latency") f.latency = await phase("latency", s + 5, () => latencyScenario(cluster, s, o.delayMs, b.p99Ms, say));
  if (o.scenario === "lossy") f.lossy = await phase("lossy", (s + 3) * o.lossPercents.length, () => lossyScenario(cluster, s, o.lossPercents, say));
  return f;
}
