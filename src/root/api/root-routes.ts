import type { Registry } from "prom-client";
import { eventFilterOf, type EventLog } from "../events/event-log.js";
import { eventStream } from "../events/event-stream.js";
import type { Inventory } from "../fleet/inventory.js";
import type { RootJobs } from "../fleet/root-jobs.js";
import { BusyError, type JobReports } from "../fleet/job-reports.js";
import { nodesReport, type RootStatus } from "../fleet/root-status.js";
import type { RootStore } from "../ingest/root-store.js";
import { polledStream } from "../outputs/watch/polled-stream.js";
import type { WatchHub } from "../outputs/watch/watch-hub.js";
import { queryRoute, watchStream } from "../outputs/watch/watch-http.js";
import { json, type RootHttpServer } from "./http-server.js";
import { inventoryRoutes } from "./inventory-routes.js";
import { jobWatchStream } from "./job-watch.js";
import { liveRoutes } from "./live-page.js";
import { HealthView, UseOverview, jobsView, overviewView } from "./page-views.js";

/** What the root's API reads. */
export interface RootApiParts {
  readonly name: string;
  readonly intervalMs: number;
  readonly registry: Registry;
  readonly store: RootStore;
  readonly status: RootStatus;
  readonly events: EventLog;
  readonly jobs: RootJobs;
  readonly reports: JobReports;
  readonly hub: WatchHub;
  readonly inventory: Inventory;
  /** The nodes the topology gives this root now. */
  expected(): ReadonlySet<string>;
  /** At a central root, the clusters' part of /api/v1/status; null at a cluster's root. */
  clusters(): unknown[] | null;
}

/**
 * Every route of the root's HTTP API besides /metrics: status, nodes, events, jobs, the watch and
 * query API, the inventory, the live page and the views it streams, the root's own metrics.
 */
export function rootRoutes(http: RootHttpServer, p: RootApiParts): void {
  http.route("/api/v1/status", async () => {
    const clusters = p.clusters();
    return json(200, clusters !== null ? { ...p.status.report(p.store), clusters } : p.status.report(p.store));
  });
  http.route("/api/v1/events", async (_req, url) => {
    if (url.pathname !== "/api/v1/events") return null;
    const filter = eventFilterOf(url.searchParams);
    return typeof filter === "string" ? { status: 400, type: "text/plain", body: filter + "\n" } : json(200, { events: p.events.recent(filter) });
  });
  http.streamRoute("/api/v1/events/stream", eventStream(p.events));
  http.route("/api/v1/jobs", async (_req, url) => {
    const raw = url.pathname.slice("/api/v1/jobs".length).replace(/^\//, "");
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      return { status: 400, type: "text/plain", body: `bad percent-escape in the job id: ${JSON.stringify(raw.slice(0, 64))}\n` };
    }
    if (id === "") return json(200, p.jobs.list());
    // /api/v1/jobs/<id>/report: its card across every root; /part: what this root holds of it.
    const sub = /^(.*)\/(report|part)$/.exec(id);
    if (sub !== null) {
      const [, job, what] = sub as unknown as [string, string, "report" | "part"];
      if (what === "part") {
        const part = p.reports.part(job);
        return part === undefined ? json(404, { error: `no job ${job} seen at this root` }) : json(200, part);
      }
      if (job.length > 128) return json(400, { error: "a job id of at most 128 characters" });
      try {
        const card = await p.reports.card(job, url.searchParams.get("local") === "1");
        return card === undefined ? json(404, { error: `no job ${job} seen at this root or the others` }) : json(200, card);
      } catch (err) {
        if (err instanceof BusyError) return json(503, { error: err.message });
        throw err;
      }
    }
    const j = p.jobs.get(id);
    return j === undefined ? json(404, { error: `no job ${id} seen at this root` }) : json(200, j);
  });
  http.route("/api/v1/self", async () => ({ status: 200, type: "text/plain; version=0.0.4; charset=utf-8", body: await p.registry.metrics() }));
  http.route("/api/v1/nodes", async () => json(200, nodesReport(p.store)));
  // The watch API: one hub for the SSE, query and gRPC forms.
  http.streamRoute("/api/v1/watch", watchStream(p.hub, p.intervalMs));
  http.route("/api/v1/query", queryRoute(p.hub, p.intervalMs), { formPost: true });
  http.watchRoute("/api/v1/jobs/", jobWatchStream(p.hub, p.jobs, p.intervalMs));
  inventoryRoutes(http, p.inventory, p.expected, p.name, () => p.intervalMs);
  // The live page and the views it streams: jobs, USE by partition, Banyan's own health.
  liveRoutes(http);
  const use = new UseOverview(p.inventory, p.store, p.expected, () => p.intervalMs);
  const health = new HealthView(p.registry, p.store, p.status, () => p.hub.watcherCount);
  http.watchRoute("/api/v1/jobs", polledStream(() => jobsView(p.jobs), () => p.intervalMs));
  http.route("/api/v1/use", async () => json(200, Object.fromEntries(use.rows())));
  // One stream for the page's jobs, USE and health: a browser opens at most six connections to a host.
  // Computed once per half interval however many pages are open.
  let overview: { atMs: number; view: Promise<Map<string, unknown>> } | null = null;
  const overviewNow = (): Promise<Map<string, unknown>> => {
    const now = Date.now();
    if (overview === null || now - overview.atMs >= p.intervalMs / 2) overview = { atMs: now, view: health.figures(now).then((h) => overviewView(p.jobs, use, h)) };
    return overview.view;
  };
  http.watchRoute("/api/v1/overview", polledStream(overviewNow, () => p.intervalMs));
  // A plain GET: the stream's snapshot once (`{time_ms, items}`), for curl and scripts.
  http.route("/api/v1/overview", async () => json(200, { time_ms: Date.now(), items: Object.fromEntries(await overviewNow()) }));
}
