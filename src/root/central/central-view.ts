import type { Topology } from "../../topology/topology-file.js";
import type { Logger } from "../../core/logger.js";
import { LimitedWarning } from "../../core/logger.js";
import type { Frame } from "../../gen/banyan/v1/uplink_pb.js";
import type { ChildLink } from "../../wire/child-server.js";
import type { ClusterQuotas } from "../ingest/cluster-quotas.js";
import { decodeEvents } from "../events/event-frames.js";
import type { EventLog } from "../events/event-log.js";
import { clusterOf, clusterOrigin } from "../exposition/origin-identity.js";
import type { RootStore } from "../ingest/root-store.js";

/** The clusters of a central topology, each with its roots (empty for a cluster's own topology). */
export function clustersOf(t: Topology): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [name, rec] of t.nodes) {
    if (rec.cluster === undefined) continue;
    let roots = out.get(rec.cluster);
    if (roots === undefined) out.set(rec.cluster, (roots = []));
    roots.push(name);
  }
  return out;
}

export interface ClusterStatus {
  readonly cluster: string;
  /** At least one of its roots has a stream to this central root. */
  readonly up: boolean;
  readonly roots: readonly { readonly root: string; readonly connected: boolean; readonly nodes_up: number | null; readonly nodes_expected: number | null }[];
  /** The cluster's nodes up at its roots (from each root's summary), and planned there. */
  readonly nodes_up: number;
  readonly nodes_expected: number;
  /** The cluster's nodes whose series reach this central root (0 with an aggregates-only filter). */
  readonly forwarded_nodes_up: number;
  readonly series: number;
  readonly limits: { readonly maxSeries: number; readonly maxOrigins: number; readonly maxBytesPerS: number } | null;
}

/** `clusters` of a central root's /api/v1/status: per cluster, its roots' links, its nodes, what it holds here. */
export function clusterStatus(clusters: ReadonlyMap<string, readonly string[]>, children: readonly ChildLink[], store: RootStore, quotas: ClusterQuotas): ClusterStatus[] {
  const connected = new Set(children.map((c) => c.node));
  const forwardedUp = new Map<string, number>();
  for (const st of store.originStates) {
    if (!st.up || st.cluster === null || clusters.get(st.cluster)?.includes(st.instance) === true) continue;
    forwardedUp.set(st.cluster, (forwardedUp.get(st.cluster) ?? 0) + 1);
  }
  const use = new Map(quotas.report().map((u) => [u.cluster, u]));
  return [...clusters].map(([cluster, roots]) => {
    const rs = roots.map((root) => {
      const summary = store.origin(clusterOrigin(cluster, root));
      const value = (name: string): number | null => (summary?.up === true ? summary.seriesValue(name) : null);
      return { root, connected: connected.has(root), nodes_up: value("banyan_cluster_nodes_up"), nodes_expected: value("banyan_cluster_nodes_expected") };
    });
    return {
      cluster,
      up: rs.some((r) => r.connected),
      roots: rs,
      nodes_up: rs.reduce((a, r) => a + (r.nodes_up ?? 0), 0),
      nodes_expected: rs.reduce((a, r) => a + (r.nodes_expected ?? 0), 0),
      forwarded_nodes_up: forwardedUp.get(cluster) ?? 0,
      series: use.get(cluster)?.series ?? 0,
      limits: use.get(cluster)?.limits ?? null,
    };
  });
}

/** What a central root does with an EVENTS frame: its events, checked, into the log with the link's cluster. */
export function clusterEventsTaker(events: EventLog, log: Logger): (f: Frame) => void {
  const refused = new LimitedWarning(log, "events frame refused");
  return (f) => {
    const cluster = clusterOf(f.origin);
    if (cluster === null) return refused.warn({ origin: f.origin, err: "events from an origin of no cluster" });
    const list = decodeEvents(f.payload);
    if (typeof list === "string") return refused.warn({ origin: f.origin, err: list });
    for (const e of list) events.ingest(e, cluster);
  };
}
