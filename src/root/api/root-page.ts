import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";
import { SeriesType, escapeLabelValue } from "../../series/series-def.js";
import type { AggregateEngine } from "../ingest/aggregates.js";
import type { PageParts } from "../exposition/exposition-cache.js";
import { familyHeader, formatValue, type ExpositionFormat } from "../exposition/exposition-text.js";
import type { RootStore } from "../ingest/root-store.js";
import { NODE_SEEN_HELP, NODE_UP_HELP, PROM_CLIENT_TYPE, nodeLabels, pageNodes } from "./root-series.js";

/**
 * The whole /metrics page of a root: the forwarded series (unless the site wants aggregates only),
 * the aggregates, each node's up and last-seen, then Banyan's own metrics. prom-client keeps those;
 * they are rendered here so both formats come out right (prom-client prints NaN as "Nan").
 * Returned as chunks in page order, open until copied: the HTTP server assembles them (PageBuffer) and closes them.
 */
export async function renderRootPage(
  format: ExpositionFormat,
  store: RootStore,
  aggregates: AggregateEngine,
  expectedNodes: ReadonlySet<string>,
  registry: Registry,
  exposeRaw: boolean,
  rootName: string,
): Promise<PageParts> {
  const own = await registry.getMetricsAsJSON();
  const page: PageParts = exposeRaw ? await store.cache.renderSliced(format, reservedNames(own, aggregates)) : { parts: [], done: () => undefined };
  try {
    let tail = "";
    if (aggregates.enabled) tail += aggregates.render(format);
    tail += nodeFamilies(format, store, expectedNodes, rootName);
    tail += ownMetrics(format, own);
    if (format === "openmetrics") tail += "# EOF\n";
    page.parts.push(Buffer.from(tail, "utf8"));
    return page;
  } catch (err) {
    page.done();
    throw err;
  }
}

/** Each node's up and last-seen as this root sees it (labels: nodeLabels). */
function nodeFamilies(format: ExpositionFormat, store: RootStore, expected: ReadonlySet<string>, rootName: string): string {
  const sorted = [...pageNodes(store, expected)].sort();
  let up = familyHeader("banyan_node_up", SeriesType.Gauge, NODE_UP_HELP, format);
  let seen = familyHeader("banyan_node_last_seen_timestamp_seconds", SeriesType.Gauge, NODE_SEEN_HELP, format);
  for (const n of sorted) {
    const st = store.origin(n);
    // Written out in name order (a template: Object.entries per node cost 50 ms more a scrape at 50,000 nodes).
    const l = nodeLabels(n, rootName);
    const inst = `{${l["cluster"] !== undefined ? `cluster="${escapeLabelValue(l["cluster"])}",` : ""}instance="${escapeLabelValue(l["instance"]!)}",root="${escapeLabelValue(rootName)}"} `;
    up += `banyan_node_up${inst}${st?.up === true ? 1 : 0}\n`;
    if (st !== undefined && st.lastSeenMs > 0) seen += `banyan_node_last_seen_timestamp_seconds${inst}${st.lastSeenMs / 1000}\n`;
  }
  return up + seen;
}

/** The family and sample names the root writes itself: no node may define them on its page. */
function reservedNames(own: MetricObjectWithValues<MetricValue<string>>[], aggregates: AggregateEngine): Set<string> {
  const names = new Set(["banyan_node_up", "banyan_node_last_seen_timestamp_seconds"]);
  for (const r of aggregates.rules) names.add(r.record);
  for (const f of own) {
    names.add(f.name);
    for (const v of f.values as { metricName?: string }[]) if (v.metricName !== undefined) names.add(v.metricName);
    if (String(f.type) === "histogram" || String(f.type) === "summary") for (const s of ["_bucket", "_sum", "_count"]) names.add(f.name + s);
  }
  return names;
}

function ownMetrics(format: ExpositionFormat, families: MetricObjectWithValues<MetricValue<string>>[]): string {
  const parts: string[] = [];
  for (const f of families) {
    const type = PROM_CLIENT_TYPE[String(f.type)] ?? SeriesType.Untyped;
    parts.push(familyHeader(f.name, type, f.help, format));
    for (const v of f.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      const labels = Object.entries(v.labels)
        .map(([k, x]) => `${k}="${escapeLabelValue(String(x))}"`)
        .join(",");
      parts.push(`${v.metricName ?? f.name}${labels === "" ? "" : `{${labels}}`} ${formatValue(v.value)}\n`);
    }
  }
  return parts.join("");
}
