import type { InventoryEntry, Inventory } from "../fleet/inventory.js";
import { json, type RootHttpServer } from "./http-server.js";
import { polledStream } from "../outputs/watch/polled-stream.js";


/** The inventory's filters from a URL: `partition`, `feature`, `node` (each optional). */
function filtered(entries: InventoryEntry[], params: URLSearchParams): InventoryEntry[] {
  const partition = params.get("partition");
  const feature = params.get("feature");
  const node = params.get("node");
  return entries.filter((e) => (partition === null || e.partitions.includes(partition)) && (feature === null || e.features.includes(feature)) && (node === null || e.node === node));
}

const METRIC = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * `/api/v1/inventory` (every node: place in the trees, partitions, features, jobs, hardware) and
 * `/api/v1/partitions/<p>/nodes?metric=node_load1` (a partition's nodes ranked by a metric, highest
 * first), each also a watch when asked as a stream (`Accept: text/event-stream` or `?watch=1`).
 */
export function inventoryRoutes(http: RootHttpServer, inventory: Inventory, expected: () => ReadonlySet<string>, root: string, intervalMs: () => number): void {
  http.route("/api/v1/inventory", async (_req, url) => (url.pathname !== "/api/v1/inventory" ? null : json(200, { root, time: new Date().toISOString(), nodes: filtered(inventory.entries(expected()), url.searchParams) })));
  http.watchRoute(
    "/api/v1/inventory",
    polledStream((url) => new Map(filtered(inventory.entries(expected(), intervalMs() / 2), url.searchParams).map((e) => [e.cluster !== undefined ? `${e.cluster}/${e.node}` : e.node, e])), intervalMs),
  );
  const ranking = (url: URL): { partition: string; metric: string; nodes: ReturnType<Inventory["ranked"]> } | string => {
    const m = /^\/api\/v1\/partitions\/([^/]+)\/nodes$/.exec(url.pathname);
    if (m === null) return "expected /api/v1/partitions/<partition>/nodes?metric=<metric name>";
    let partition: string;
    try {
      partition = decodeURIComponent(m[1]!);
    } catch {
      return "bad percent-escape in the partition";
    }
    const metric = url.searchParams.get("metric") ?? "node_load1";
    if (!METRIC.test(metric)) return `metric ${JSON.stringify(metric.slice(0, 80))}: expected a metric name`;
    const limit = Number(url.searchParams.get("limit") ?? "10000");
    if (!(Number.isInteger(limit) && limit > 0)) return "limit: expected a positive whole number";
    return { partition, metric, nodes: inventory.ranked(partition, metric, expected(), intervalMs() / 2).slice(0, limit) };
  };
  http.route("/api/v1/partitions", async (_req, url) => {
    const r = ranking(url);
    return typeof r === "string" ? json(400, { error: r }) : json(200, r);
  });
  http.watchRoute(
    "/api/v1/partitions/",
    polledStream((url) => {
      const r = ranking(url);
      return typeof r === "string" ? r : new Map([["ranking", r.nodes]]);
    }, intervalMs),
  );
}
