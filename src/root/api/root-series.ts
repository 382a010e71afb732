import type { Registry } from "prom-client";
import { SeriesType, familyOf, seriesDef, seriesKey, type SeriesDef } from "../../series/series-def.js";
import { aggregateHelp, type AggregateEngine } from "../ingest/aggregates.js";
import { originIdentity } from "../exposition/origin-identity.js";
import type { RootSeriesSnapshot } from "../outputs/root-output.js";
import type { RootStore } from "../ingest/root-store.js";

/** prom-client's type names as Banyan's series types. */
export const PROM_CLIENT_TYPE: Readonly<Record<string, SeriesType>> = {
  counter: SeriesType.Counter,
  gauge: SeriesType.Gauge,
  histogram: SeriesType.HistogramPart,
  summary: SeriesType.SummaryPart,
};

export const NODE_UP_HELP = "1 when the node's frames reach this root, 0 when it is silent here past dead_after.";
export const NODE_SEEN_HELP = "Arrival time of the node's latest frame at this root (Unix seconds).";

/** What the root's own series are read from (the same parts its /metrics page renders). */
export interface RootSeriesParts {
  readonly store: RootStore;
  readonly aggregates: () => AggregateEngine;
  readonly expected: () => ReadonlySet<string>;
  readonly registry: Registry;
  readonly rootName: string;
}

/**
 * The series a root's /metrics page holds besides the nodes' own: each node's `banyan_node_up` and
 * `banyan_node_last_seen_timestamp_seconds`, the aggregates, and the root's own metrics (prom-client's,
 * with `instance` set to the root's name, as a scrape would set it to the root's address). What
 * remote_write sends so that a store fed by remote_write alone answers every dashboard that a scrape
 * of the root answers.
 * Cost per collection: one pass over the nodes and the root's metrics. The nodes' definitions are
 * kept from one collection to the next (a map bounded by the page's nodes): a steady root allocates
 * nothing per node; the root's own metrics and the aggregates (hundreds) are built again each time
 * and their definitions reused by key.
 */
export class RootSeries {
  private nodeDefs = new Map<string, readonly [SeriesDef, SeriesDef]>();
  private ownDefs = new Map<string, SeriesDef>();

  constructor(private readonly parts: RootSeriesParts) {}

  async collect(): Promise<RootSeriesSnapshot> {
    const defs: SeriesDef[] = [];
    const values: number[] = [];
    const nodes = new Map<string, readonly [SeriesDef, SeriesDef]>();
    const { store, rootName } = this.parts;
    for (const n of pageNodes(store, this.parts.expected())) {
      const pair = this.nodeDefs.get(n) ?? nodePair(n, rootName);
      nodes.set(n, pair);
      const st = store.origin(n);
      defs.push(pair[0]);
      values.push(st?.up === true ? 1 : 0);
      if (st !== undefined && st.lastSeenMs > 0) {
        defs.push(pair[1]);
        values.push(st.lastSeenMs / 1000);
      }
    }
    this.nodeDefs = nodes;
    const own = new Map<string, SeriesDef>();
    const keep = (name: string, labels: Record<string, string>, type: SeriesType, help: string, value: number): void => {
      const def = seriesDef(name, labels, type, { help, family: familyOf(name, type) });
      const key = seriesKey(def.name, def.labels);
      const held = this.ownDefs.get(key) ?? own.get(key) ?? def;
      own.set(key, held);
      defs.push(held);
      values.push(value);
    };
    const aggregates = this.parts.aggregates();
    if (aggregates.enabled) {
      const help = new Map(aggregates.rules.map((r) => [r.record, aggregateHelp(r)]));
      aggregates.forEachResult((record, labels, value) => keep(record, Object.fromEntries(labels), SeriesType.Gauge, help.get(record) ?? "", value));
    }
    for (const f of await this.parts.registry.getMetricsAsJSON()) {
      const type = PROM_CLIENT_TYPE[String(f.type)] ?? SeriesType.Untyped;
      for (const v of f.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
        const labels: Record<string, string> = { instance: rootName };
        for (const [k, x] of Object.entries(v.labels)) labels[k] = String(x);
        keep(v.metricName ?? f.name, labels, type, f.help, v.value);
      }
    }
    this.ownDefs = own;
    return { defs, values };
  }
}

/** The nodes a root's page gives up and last seen for: the topology's for this root, and every origin it holds. */
export function pageNodes(store: RootStore, expected: ReadonlySet<string>): Set<string> {
  const names = new Set(expected);
  for (const n of store.originNames) names.add(n);
  return names;
}

/**
 * The labels of a node's up and last-seen series, by name: `cluster` (a central root's origin),
 * `instance`, and `root`, which keeps two roots' views of one node apart (a node that failed over is
 * down at one and up at the other; `max by (instance)` gives the cluster's view).
 */
export function nodeLabels(origin: string, rootName: string): Record<string, string> {
  const id = originIdentity(origin);
  return id.cluster !== null ? { cluster: id.cluster, instance: id.instance, root: rootName } : { instance: id.instance, root: rootName };
}

function nodePair(origin: string, rootName: string): readonly [SeriesDef, SeriesDef] {
  const labels = nodeLabels(origin, rootName);
  return [seriesDef("banyan_node_up", labels, SeriesType.Gauge, { help: NODE_UP_HELP }), seriesDef("banyan_node_last_seen_timestamp_seconds", labels, SeriesType.Gauge, { help: NODE_SEEN_HELP })];
}
