import { Registry } from "prom-client";
import { bindAddress, nodesOfRoot, rootRecord, treeBindAddress } from "../topology/topology-lookup.js";
import { ChildServer } from "../wire/child-server.js";
import { OriginAuthority } from "../wire/origin-authority.js";
import type { DaemonContext } from "../node/daemon-context.js";
import { resolveLimits, resolveTreePort } from "../wire/wire-config.js";
import { AggregateEngine } from "./ingest/aggregates.js";
import { RootHttpServer } from "./api/http-server.js";
import type { RootConfig } from "./root-config.js";
import { RootJobs } from "./fleet/root-jobs.js";
import { renderRootPage } from "./api/root-page.js";
import { RootSeries } from "./api/root-series.js";
import type { PageParts } from "./exposition/exposition-cache.js";
import { RootStatus, nodesReport } from "./fleet/root-status.js";
import { statusPlan } from "./fleet/status-plan.js";
import { RootStore } from "./ingest/root-store.js";
import type { OriginState } from "./ingest/origin-state.js";
import type { RootOutput } from "./outputs/root-output.js";
import { resolveHttpBounds } from "../core/http-bounds.js";
import { TreeTls } from "../wire/tree-tls.js";
import { readWebConfig, type WebConfig } from "../core/web-config.js";
import { AlertmanagerOutput } from "./events/alertmanager.js";
import { EventLog, eventFilterOf } from "./events/event-log.js";
import { eventStream } from "./events/event-stream.js";
import { EventWatch } from "./fleet/event-watch.js";
import { WebhookOutput } from "./events/webhook.js";
import { JobLog } from "./events/job-log.js";
import { RemoteWriteOutput } from "./outputs/remote-write/remote-write-output.js";
import { CentralUplink } from "./outputs/central/central-uplink.js";
import { DEFAULT_WATCH_LIMITS, WatchHub } from "./outputs/watch/watch-hub.js";
import { queryRoute, watchStream } from "./outputs/watch/watch-http.js";
import { WatchGrpcServer } from "./outputs/watch/watch-grpc.js";
import { jobWatchStream } from "./api/job-watch.js";
import { Inventory } from "./fleet/inventory.js";
import { inventoryRoutes } from "./api/inventory-routes.js";
import { liveRoutes } from "./api/live-page.js";
import { HealthView, UseOverview, jobsView, overviewView } from "./api/page-views.js";
import { polledStream } from "./outputs/watch/polled-stream.js";
import { overDefaults } from "../core/config-file.js";
import { ClusterQuotas } from "./ingest/cluster-quotas.js";
import { clusterEventsTaker, clusterStatus, clustersOf } from "./central/central-view.js";
import { readTopologyFile, type RootRecord, type Topology } from "../topology/topology-file.js";
import { defaultDeadAfterMs } from "../wire/tree-timing.js";

/**
 * A root: the child-facing server feeding the store (resyncs go back down through it), the HTTP
 * server reading it, the job view, and the outputs.
 *
 *   ChildServer → RootStore (+ aggregates, outputs) ← RootHttpServer
 *
 * Shutdown: stop accepting (HTTP, then children), then the store's timers and the outputs.
 */
export interface RootDaemon {
  readonly name: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The gRPC Watch port (watch.grpcListen), 0 without one. */
  readonly watchPort: number;
  readonly store: RootStore;
  readonly registry: Registry;
  /** The /metrics page as a string (tests; the HTTP server sends the bytes). */
  render(format?: "text" | "openmetrics"): Promise<string>;
  /** Applies a new config (aggregates, exposeRaw, deadAfterMs) and topology (expected nodes). */
  reload(config: Readonly<RootConfig>, topology: Topology): void;
  stop(): Promise<void>;
}

export async function startRoot(ctx: DaemonContext, config: Readonly<RootConfig>): Promise<RootDaemon> {
  const rec = rootRecord(ctx.topology, ctx.name, ctx.topologySource);
  // The certificates first: a bad file is a config error before anything starts.
  const tls = config.tree.tls !== undefined ? new TreeTls(config.tree.tls, ctx.name, ctx.topology) : null;
  const registry = ctx.registry ?? new Registry();
  const log = ctx.log.child({ root: ctx.name });
  const limits = resolveLimits(config.limits);
  const deadAfterMs = (cfg: Readonly<RootConfig>): number => cfg.deadAfterMs ?? defaultDeadAfterMs(cfg.intervalMs);
  let aggregates = new AggregateEngine(config.aggregates);
  // A central root's "nodes" are clusters' roots: links, not origins of their own.
  const expectedNodes = (t: Topology, r: RootRecord): Set<string> => new Set(nodesOfRoot(t, r).filter((n) => t.nodes.get(n)?.cluster === undefined));
  let expected = expectedNodes(ctx.topology, rec);
  let clusters = clustersOf(ctx.topology);
  let exposeRaw = config.exposeRaw;
  const storeOpts = {
    deadAfterMs: deadAfterMs(config),
    forgetAfterMs: config.forgetAfterMs,
    intervalMs: config.intervalMs,
    resyncIntervalMs: config.resyncIntervalMs,
    keyframeIntervalMs: config.keyframeIntervalMs,
    resyncPerS: config.resyncPerS ?? null,
    resyncBurst: config.resyncBurst,
    limits,
    memoryBudgetBytes: config.memoryBudgetBytes ?? null,
  };
  const store = new RootStore(storeOpts, aggregates, log, registry);
  const authority = new OriginAuthority(ctx.topology);
  const server = new ChildServer({ accept: (frames, alive, from) => store.acceptSliced(frames, alive, from) }, limits, log.child({ part: "children" }), registry, { authority, treePort: resolveTreePort(config.tree), ...(tls !== null ? { tls } : {}) });
  store.connectDownlink({ resync: (origins) => void server.routeResync(origins) });
  const status = new RootStatus(statusPlan(ctx.topology, ctx.name, ctx.topologySource));
  store.onResyncRequested((origin) => status.recordResync(origin));
  const page = (format: "text" | "openmetrics"): Promise<PageParts> => renderRootPage(format, store, aggregates, expected, registry, exposeRaw, ctx.name);
  const render = async (format: "text" | "openmetrics" = "text"): Promise<string> => {
    const { parts, done } = await page(format);
    try {
      return Buffer.concat(parts).toString("utf8");
    } finally {
      done();
    }
  };
  const webConfig = (cfg: Readonly<RootConfig>): WebConfig | null => (cfg.web.configFile !== undefined ? readWebConfig(cfg.web.configFile, "web.configFile") : null);
  const http = new RootHttpServer(page, log, registry, config.gzipLevel, resolveHttpBounds(config.web), webConfig(config));
  // Events: what the root sees happen, kept for /api/v1/events, streamed, and sent to Alertmanagers.
  const events = new EventLog(ctx.name, registry, config.events.keep);
  // At a central root: each cluster's limits, and its events arriving in EVENTS frames.
  const quotas = new ClusterQuotas(config.clusters, registry);
  store.setClusterQuotas(quotas);
  store.onEventsFrame(clusterEventsTaker(events, log.child({ part: "clusters" })));
  http.route("/api/v1/status", async () => {
    const report = clusters.size > 0 ? { ...status.report(store), clusters: clusterStatus(clusters, server.children, store, quotas) } : status.report(store);
    return { status: 200, type: "application/json", body: JSON.stringify(report) };
  });
  const jobs = new RootJobs(store);
  const watch = new EventWatch(events, store, jobs, statusPlan(ctx.topology, ctx.name, ctx.topologySource, config.events.nodeLabels), { treeDegradedBelow: config.events.treeDegradedBelow, resyncStormAbove: config.events.resyncStormAbove, stragglers: config.events.stragglers, startupMs: config.events.startupMs ?? Math.max(10_000, 3 * deadAfterMs(config)) });
  jobs.start();
  http.route("/api/v1/events", async (_req, url) => {
    if (url.pathname !== "/api/v1/events") return null;
    const filter = eventFilterOf(url.searchParams);
    return typeof filter === "string" ? { status: 400, type: "text/plain", body: filter + "\n" } : { status: 200, type: "application/json", body: JSON.stringify({ events: events.recent(filter) }) };
  });
  http.streamRoute("/api/v1/events/stream", eventStream(events));
  let alertmanagerOut: AlertmanagerOutput | null = null;
  let alertmanagerConfig = "";
  const startAlertmanagers = (cfg: Readonly<RootConfig>, httpAddress: string): void => {
    const key = JSON.stringify([cfg.events.alertmanagers, cfg.events.resendMs]);
    if (key === alertmanagerConfig) return;
    alertmanagerOut?.stop();
    alertmanagerOut = null;
    alertmanagerConfig = key;
    if (cfg.events.alertmanagers.length === 0) return;
    alertmanagerOut = new AlertmanagerOutput(cfg.events.alertmanagers, cfg.events.resendMs, `http://${httpAddress}/api/v1/status`, log.child({ part: "alertmanager" }), registry);
    alertmanagerOut.start(events);
  };
  let webhooks: WebhookOutput[] = [];
  let webhooksConfig = "";
  const startWebhooks = (cfg: Readonly<RootConfig>): void => {
    const key = JSON.stringify(cfg.events.webhooks);
    if (key === webhooksConfig) return;
    // The new ones are made first: a bad secret file refuses the reload and keeps the old ones.
    const next = cfg.events.webhooks.map((w) => new WebhookOutput(w, ctx.name, log.child({ part: "webhook" }), registry));
    for (const w of webhooks) w.stop();
    webhooks = next;
    webhooksConfig = key;
    for (const w of webhooks) w.start(events);
  };
  startWebhooks(config);
  const jobLog = config.events.jobLog !== undefined ? new JobLog(config.events.jobLog, log.child({ part: "job-log" })) : null;
  jobLog?.start(events);
  http.route("/api/v1/jobs", async (_req, url) => {
    const raw = url.pathname.slice("/api/v1/jobs".length).replace(/^\//, "");
    let id: string;
    try {
      id = decodeURIComponent(raw);
    } catch {
      return { status: 400, type: "text/plain", body: `bad percent-escape in the job id: ${JSON.stringify(raw.slice(0, 64))}\n` };
    }
    if (id === "") return { status: 200, type: "application/json", body: JSON.stringify(jobs.list()) };
    const j = jobs.get(id);
    return j === undefined ? { status: 404, type: "application/json", body: JSON.stringify({ error: `no job ${id} seen at this root` }) } : { status: 200, type: "application/json", body: JSON.stringify(j) };
  });
  http.route("/api/v1/self", async () => ({ status: 200, type: "text/plain; version=0.0.4; charset=utf-8", body: await registry.metrics() }));
  http.route("/api/v1/nodes", async () => ({ status: 200, type: "application/json", body: JSON.stringify(nodesReport(store)) }));
  const rootSeries = new RootSeries({ store, aggregates: () => aggregates, expected: () => expected, registry, rootName: ctx.name });
  const outputView = { origins: () => store.originStates, families: () => store.cache.shownFamilies(), seriesNamed: (name: string) => seriesNamed(store, name), rootSeries: () => rootSeries.collect() };
  // The watch API: one hub for the SSE, query and gRPC forms, fed like any output (never replaced on reload).
  const hub = new WatchHub(overDefaults(DEFAULT_WATCH_LIMITS, config.watch), registry);
  hub.start(outputView);
  http.streamRoute("/api/v1/watch", watchStream(hub, config.intervalMs));
  http.route("/api/v1/query", queryRoute(hub, config.intervalMs), { formPost: true });
  http.watchRoute("/api/v1/jobs/", jobWatchStream(hub, jobs, config.intervalMs));
  let plan = statusPlan(ctx.topology, ctx.name, ctx.topologySource, config.events.nodeLabels);
  const inventory = new Inventory(store, () => plan);
  inventoryRoutes(http, inventory, () => expected, ctx.name, () => config.intervalMs);
  // The live page and the views it streams: jobs, USE by partition, Banyan's own health.
  liveRoutes(http);
  const use = new UseOverview(inventory, store, () => expected, () => config.intervalMs);
  const health = new HealthView(registry, store, status, () => hub.watcherCount);
  http.watchRoute("/api/v1/jobs", polledStream(() => jobsView(jobs), () => config.intervalMs));
  http.route("/api/v1/use", async () => ({ status: 200, type: "application/json", body: JSON.stringify(Object.fromEntries(use.rows())) }));
  // One stream for the page's jobs, USE and health: a browser opens at most six connections to a host.
  // Computed once per half interval however many pages are open.
  let overview: { atMs: number; view: Promise<Map<string, unknown>> } | null = null;
  const overviewNow = (): Promise<Map<string, unknown>> => {
    const now = Date.now();
    if (overview === null || now - overview.atMs >= config.intervalMs / 2) overview = { atMs: now, view: health.figures(now).then((h) => overviewView(jobs, use, h)) };
    return overview.view;
  };
  http.watchRoute("/api/v1/overview", polledStream(overviewNow, () => config.intervalMs));
  // A plain GET: the stream's snapshot once (`{time_ms, items}`), for curl and scripts.
  http.route("/api/v1/overview", async () => ({ status: 200, type: "application/json", body: JSON.stringify({ time_ms: Date.now(), items: Object.fromEntries(await overviewNow()) }) }));
  const watchGrpc = config.watch.grpcListen !== undefined ? new WatchGrpcServer(hub, config.intervalMs, webConfig(config), log.child({ part: "watch" })) : null;
  const centralSources = {
    rootName: ctx.name,
    intervalMs: config.intervalMs,
    limits,
    ...(config.tree.tls !== undefined ? { treeTls: config.tree.tls } : {}),
    summary: () => ({ nodesUp: countUp(store, expected), nodesExpected: expected.size }),
    aggregates: () => aggregates,
    events,
  };
  let central: CentralUplink | null = null;
  const startOutputs = (cfg: Readonly<RootConfig>): RootOutput[] => {
    const outs: RootOutput[] = cfg.remoteWrite.map((w) => new RemoteWriteOutput(w, log.child({ part: "remote_write" }), registry));
    central = cfg.central !== undefined ? new CentralUplink(cfg.central, readTopologyFile(cfg.central.topology), centralSources, log, registry) : null;
    if (central !== null) outs.push(central);
    for (const o of outs) o.start(outputView);
    store.setOutputs([...outs, hub]);
    return outs;
  };
  let outputs = startOutputs(config);
  let outputsConfig = JSON.stringify([config.remoteWrite, config.central]);
  const grpcPort = await server.listen(config.listen ?? (await treeBindAddress(rec.address, ctx.topologySource)));
  if (tls === null) log.info({ grpc: grpcPort }, "the tree is not authenticated (no tree.tls): the tree port listens on the topology's address only, and origins are checked against the topology");
  else log.info({ grpc: grpcPort, certificate: tls.shown }, "mutual TLS on the tree: every child shows a certificate of the site CA that names it");
  const httpPort = await http.listen(config.http ?? bindAddress(rec.http));
  const watchPort = watchGrpc !== null ? await watchGrpc.listen(config.watch.grpcListen!) : 0;
  const generatorAddress = `${/^(0\.0\.0\.0|\[::\])$/.test(rec.http.replace(/:\d+$/, "")) ? "127.0.0.1" : rec.http.replace(/:\d+$/, "")}:${httpPort}`;
  startAlertmanagers(config, generatorAddress);
  watch.start();
  store.start();
  http.setReady(true);
  log.info({ grpc: grpcPort, http: httpPort, trees: rec.trees, nodes: expected.size }, `root ${ctx.name} ready: trees on port ${grpcPort}, /metrics on port ${httpPort}`);
  return {
    name: ctx.name,
    grpcPort,
    httpPort,
    watchPort,
    store,
    registry,
    render,
    reload(cfg, topology) {
      aggregates = new AggregateEngine(cfg.aggregates);
      store.setAggregates(aggregates);
      exposeRaw = cfg.exposeRaw;
      http.setWebConfig(webConfig(cfg));
      watchGrpc?.setWebConfig(webConfig(cfg));
      http.setGzipLevel(cfg.gzipLevel);
      store.setDeadAfterMs(deadAfterMs(cfg));
      store.setMemoryBudget(cfg.memoryBudgetBytes ?? null);
      hub.setLimits(overDefaults(DEFAULT_WATCH_LIMITS, cfg.watch));
      expected = expectedNodes(topology, rootRecord(topology, ctx.name, ctx.topologySource));
      clusters = clustersOf(topology);
      quotas.setConfig(cfg.clusters);
      authority.setTopology(topology);
      if (tls !== null) {
        tls.setTopology(topology);
        tls.reload();
        server.refreshCredentials();
      }
      status.setPlan(statusPlan(topology, ctx.name, ctx.topologySource));
      plan = statusPlan(topology, ctx.name, ctx.topologySource, cfg.events.nodeLabels);
      watch.setPlan(plan);
      startAlertmanagers(cfg, generatorAddress);
      startWebhooks(cfg);
      // The central topology is read again (a new chain of central roots) even when the config is the same.
      if (JSON.stringify([cfg.remoteWrite, cfg.central]) === outputsConfig && cfg.central !== undefined) central?.setTopology(readTopologyFile(cfg.central.topology));
      if (JSON.stringify([cfg.remoteWrite, cfg.central]) !== outputsConfig) {
        // The old outputs stop first (one with a queue on disk at once, leaving it to its successor
        // on the same directory; one in memory drains in the background), then the new ones start.
        for (const o of outputs) void o.stop();
        outputs = startOutputs(cfg);
        outputsConfig = JSON.stringify([cfg.remoteWrite, cfg.central]);
      }
      log.info({ aggregates: cfg.aggregates.length, exposeRaw, ...(tls !== null ? { certificate: tls.shown } : {}) }, "root reloaded its config and topology");
    },
    async stop() {
      http.setReady(false);
      await http.stop();
      await watchGrpc?.stop();
      await server.stop();
      store.stop();
      store.setOutputs([]);
      await Promise.all(outputs.map((o) => o.stop()));
      await hub.stop();
      jobs.stop();
      watch.stop();
      alertmanagerOut?.stop();
      for (const w of webhooks) w.stop();
      await jobLog?.stop();
    },
  };
}

/** Nodes of the topology up at this root (what a cluster's root tells the central one). */
function countUp(store: RootStore, expected: ReadonlySet<string>): number {
  let n = 0;
  for (const name of expected) if (store.origin(name)?.up === true) n++;
  return n;
}

/** The series called `name` on origins that are up, from the exposition cache's families (a histogram part's family is its base name). */
function* seriesNamed(store: RootStore, name: string): Generator<{ origin: OriginState; ids: readonly number[] }> {
  const families = new Set([name, name.replace(/_(bucket|sum|count)$/, "")]);
  for (const family of families) for (const of of store.cache.shownMembers(family)) yield { origin: of.view as OriginState, ids: of.ids };
}
