import { Registry } from "prom-client";
import { bindAddress, nodesOfRoot, rootRecord, treeBindAddress } from "../topology/topology-lookup.js";
import type { RootRecord, Topology } from "../topology/topology-file.js";
import { overDefaults } from "../core/config-file.js";
import { resolveHttpBounds } from "../core/http-bounds.js";
import { ServiceList, serviceOf } from "../core/service.js";
import { readWebConfig, type WebConfig } from "../core/web-config.js";
import { ChildServer } from "../wire/child-server.js";
import { OriginAuthority } from "../wire/origin-authority.js";
import { TreeTls } from "../wire/tree-tls.js";
import { defaultDeadAfterMs } from "../wire/tree-timing.js";
import { resolveLimits, resolveTreePort } from "../wire/wire-config.js";
import type { DaemonContext } from "../node/daemon-context.js";
import type { RootConfig } from "./root-config.js";
import type { PageParts } from "./exposition/exposition-cache.js";
import { EventLog } from "./events/event-log.js";
import { AlertmanagerSink, EventSinks } from "./events/event-sinks.js";
import type { OriginState } from "./ingest/origin-state.js";
import { AggregateEngine } from "./ingest/aggregates.js";
import { ClusterQuotas } from "./ingest/cluster-quotas.js";
import { RootStore } from "./ingest/root-store.js";
import { EventWatch } from "./fleet/event-watch.js";
import { Inventory } from "./fleet/inventory.js";
import { RootJobs } from "./fleet/root-jobs.js";
import { JobReports, type JobRootsPlan } from "./fleet/job-reports.js";
import { JobActions } from "./fleet/job-actions.js";
import { RootStatus } from "./fleet/root-status.js";
import { statusPlan } from "./fleet/status-plan.js";
import { RootOutputs } from "./outputs/root-outputs.js";
import { DEFAULT_WATCH_LIMITS, WatchHub } from "./outputs/watch/watch-hub.js";
import { WatchGrpcServer } from "./outputs/watch/watch-grpc.js";
import { RootHttpServer } from "./api/http-server.js";
import { renderRootPage } from "./api/root-page.js";
import { rootRoutes } from "./api/root-routes.js";
import { RootSeries } from "./api/root-series.js";
import { clusterEventsTaker, clusterStatus, clustersOf } from "./central/central-view.js";

/**
 * A root: the child-facing server feeding the store (resyncs go back down through it), the HTTP
 * server reading it, the job view, events, and the outputs.
 *
 *   ChildServer → RootStore (+ aggregates, outputs) ← RootHttpServer
 *
 * It is the ordered list of its services (startRoot): started in order, reloaded in order, stopped
 * in reverse: not ready, the event watch and Alertmanagers, the listeners (watch gRPC, HTTP, the
 * tree port), the store's timers, the outputs, the event destinations, the job view.
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

/** A reload as the root's services see it: the config, the topology, and the files read for it first. */
interface RootReload {
  readonly config: Readonly<RootConfig>;
  readonly topology: Topology;
  /** web.configFile read (a bad one refuses the reload before anything changed). */
  readonly web: WebConfig | null;
}

export async function startRoot(ctx: DaemonContext, config: Readonly<RootConfig>): Promise<RootDaemon> {
  const rec = rootRecord(ctx.topology, ctx.name, ctx.topologySource);
  // The certificates first: a bad file is a config error before anything starts.
  const tls = config.tree.tls !== undefined ? new TreeTls(config.tree.tls, ctx.name, ctx.topology) : null;
  const registry = ctx.registry ?? new Registry();
  const log = ctx.log.child({ root: ctx.name });
  const limits = resolveLimits(config.limits);
  // What each reload derives afresh from the config and topology: the aggregates, the nodes this root expects, a central root's clusters, the plan of its trees.
  const derived = (cfg: Readonly<RootConfig>, t: Topology) => ({ aggregates: new AggregateEngine(cfg.aggregates), exposeRaw: cfg.exposeRaw, expected: expectedNodes(t, rootRecord(t, ctx.name, ctx.topologySource)), clusters: clustersOf(t), plan: statusPlan(t, ctx.name, ctx.topologySource, cfg.events.nodeLabels), roots: jobRootsPlan(t, ctx.name) });
  let now = derived(config, ctx.topology);
  const store = new RootStore(storeOptions(config, limits), now.aggregates, log, registry);
  const authority = new OriginAuthority(ctx.topology);
  const server = new ChildServer({ accept: (frames, alive, from) => store.acceptSliced(frames, alive, from) }, limits, log.child({ part: "children" }), registry, { authority, treePort: resolveTreePort(config.tree), ...(tls !== null ? { tls } : {}) });
  store.connectDownlink({ resync: (origins) => void server.routeResync(origins) });
  const status = new RootStatus(now.plan);
  store.onResyncRequested((origin) => status.recordResync(origin));
  const page = (format: "text" | "openmetrics"): Promise<PageParts> => renderRootPage(format, store, now.aggregates, now.expected, registry, now.exposeRaw, ctx.name);
  const http = new RootHttpServer(page, log, registry, config.gzipLevel, resolveHttpBounds(config.web), webConfigOf(config));
  // Events: what the root sees happen, kept for /api/v1/events, streamed, and sent on.
  const events = new EventLog(ctx.name, registry, config.events.keep);
  // At a central root: each cluster's limits, and its events arriving in EVENTS frames.
  const quotas = new ClusterQuotas(config.clusters, registry);
  store.setClusterQuotas(quotas);
  store.onEventsFrame(clusterEventsTaker(events, log.child({ part: "clusters" })));
  const jobs = new RootJobs(store, ctx.name);
  const reports = new JobReports(jobs, events, config.jobs, now.roots, log.child({ part: "job-reports" }), undefined, (name) => firstValue(store, name));
  const actions = new JobActions(jobs, events, config.jobs.actions, log.child({ part: "job-actions" }));
  const watch = new EventWatch(events, store, jobs, now.plan, { treeDegradedBelow: config.events.treeDegradedBelow, resyncStormAbove: config.events.resyncStormAbove, stragglers: config.events.stragglers, startupMs: config.events.startupMs ?? Math.max(10_000, 3 * deadAfterMsOf(config)) });
  const rootSeries = new RootSeries({ store, aggregates: () => now.aggregates, expected: () => now.expected, registry, rootName: ctx.name });
  const outputView = { origins: () => store.originStates, families: () => store.cache.shownFamilies(), seriesNamed: (name: string) => seriesNamed(store, name), rootSeries: () => rootSeries.collect() };
  // The watch API: one hub for the SSE, query and gRPC forms, fed like any output (never replaced on reload).
  const hub = new WatchHub(overDefaults(DEFAULT_WATCH_LIMITS, config.watch), registry);
  const inventory = new Inventory(store, () => now.plan);
  rootRoutes(http, { name: ctx.name, intervalMs: config.intervalMs, registry, store, status, events, jobs, reports, hub, inventory, expected: () => now.expected, clusters: () => (now.clusters.size > 0 ? clusterStatus(now.clusters, server.children, store, quotas) : null) });
  const watchGrpc = config.watch.grpcListen !== undefined ? new WatchGrpcServer(hub, config.intervalMs, webConfigOf(config), log.child({ part: "watch" })) : null;
  const central = { rootName: ctx.name, intervalMs: config.intervalMs, limits, ...(config.tree.tls !== undefined ? { treeTls: config.tree.tls } : {}), summary: () => ({ nodesUp: countUp(store, now.expected), nodesExpected: now.expected.size }), aggregates: () => now.aggregates, events };
  let grpcPort = 0;
  let httpPort = 0;
  let watchPort = 0;
  const services = new ServiceList<RootReload>(log);
  services.add(
    {
      name: "the root's config and topology",
      reload({ config: cfg, topology }) {
        now = derived(cfg, topology);
        store.setAggregates(now.aggregates);
        status.setPlan(now.plan);
        hub.setLimits(overDefaults(DEFAULT_WATCH_LIMITS, cfg.watch));
        quotas.setConfig(cfg.clusters);
      },
    },
    { name: "job view", start: () => jobs.start(), stop: () => jobs.stop() },
    { name: "job reports", start: () => reports.start(), reload: ({ config: cfg }) => reports.setConfig(cfg.jobs, now.roots), stop: () => reports.stop() },
    { name: "job actions", start: () => actions.start(), reload: ({ config: cfg }) => actions.setConfig(cfg.jobs.actions), stop: async () => void (await actions.stop()) },
    serviceOf(new EventSinks(events, config.events, ctx.name, log, registry), (r: RootReload) => r.config.events),
    serviceOf(new RootOutputs(config, outputView, [hub], (outs) => store.setOutputs(outs), central, log, registry), (r: RootReload) => r.config),
    {
      name: "store",
      start: () => store.start(),
      reload({ config: cfg }) {
        store.setDeadAfterMs(deadAfterMsOf(cfg));
        store.setMemoryBudget(cfg.memoryBudgetBytes ?? null);
      },
      stop: () => store.stop(),
    },
    {
      name: "tree port",
      async start() {
        grpcPort = await server.listen(config.listen ?? (await treeBindAddress(rec.address, ctx.topologySource)));
        log.info({ grpc: grpcPort, ...(tls !== null ? { certificate: tls.shown } : {}) }, tls === null ? "the tree is not authenticated (no tree.tls): the tree port listens on the topology's address only, and origins are checked against the topology" : "mutual TLS on the tree: every child shows a certificate of the site CA that names it");
      },
      reload({ topology }) {
        authority.setTopology(topology);
        if (tls === null) return;
        tls.setTopology(topology);
        tls.reload();
        server.refreshCredentials();
      },
      stop: () => server.stop(),
    },
    {
      name: "HTTP",
      start: async () => void (httpPort = await http.listen(config.http ?? bindAddress(rec.http))),
      reload({ config: cfg, web }) {
        http.setWebConfig(web);
        http.setGzipLevel(cfg.gzipLevel);
      },
      stop: () => http.stop(),
    },
    ...(watchGrpc !== null ? [{ name: "watch gRPC", start: async () => void (watchPort = await watchGrpc.listen(config.watch.grpcListen!)), reload: (r: RootReload) => watchGrpc.setWebConfig(r.web), stop: () => watchGrpc.stop() }] : []),
    serviceOf(new AlertmanagerSink(events, config.events, () => `http://${generatorAddress(rec.http, httpPort)}/api/v1/status`, log, registry), (r: RootReload) => r.config.events),
    { name: "event watch", start: () => watch.start(), reload: () => watch.setPlan(now.plan), stop: () => watch.stop() },
    { name: "readiness", start: () => http.setReady(true), stop: () => http.setReady(false) },
  );
  await services.start();
  log.info({ grpc: grpcPort, http: httpPort, trees: rec.trees, nodes: now.expected.size }, `root ${ctx.name} ready: trees on port ${grpcPort}, /metrics on port ${httpPort}`);
  return {
    name: ctx.name,
    grpcPort,
    httpPort,
    watchPort,
    store,
    registry,
    render: (format = "text") => pageText(page, format),
    reload(cfg, topology) {
      services.reload({ config: cfg, topology, web: webConfigOf(cfg) });
      log.info({ aggregates: cfg.aggregates.length, exposeRaw: now.exposeRaw, ...(tls !== null ? { certificate: tls.shown } : {}) }, "root reloaded its config and topology");
    },
    stop: () => services.stop(),
  };
}

/** The page as one string (tests; the HTTP server sends its parts). */
async function pageText(page: (format: "text" | "openmetrics") => Promise<PageParts>, format: "text" | "openmetrics"): Promise<string> {
  const { parts, done } = await page(format);
  try {
    return Buffer.concat(parts).toString("utf8");
  } finally {
    done();
  }
}

function storeOptions(config: Readonly<RootConfig>, limits: ReturnType<typeof resolveLimits>): ConstructorParameters<typeof RootStore>[0] {
  return {
    deadAfterMs: deadAfterMsOf(config),
    forgetAfterMs: config.forgetAfterMs,
    intervalMs: config.intervalMs,
    resyncIntervalMs: config.resyncIntervalMs,
    keyframeIntervalMs: config.keyframeIntervalMs,
    resyncPerS: config.resyncPerS ?? null,
    resyncBurst: config.resyncBurst,
    limits,
    memoryBudgetBytes: config.memoryBudgetBytes ?? null,
  };
}

const deadAfterMsOf = (config: Readonly<RootConfig>): number => config.deadAfterMs ?? defaultDeadAfterMs(config.intervalMs);

const webConfigOf = (config: Readonly<RootConfig>): WebConfig | null => (config.web.configFile !== undefined ? readWebConfig(config.web.configFile, "web.configFile") : null);

/** The other roots of the topology and the root each node's tree ends at, for jobs spread over several. */
function jobRootsPlan(t: Topology, name: string): JobRootsPlan {
  const rootOfTree = new Map<number, string>();
  for (const r of t.roots) for (const tree of r.trees) rootOfTree.set(tree, r.name);
  return {
    root: name,
    peers: t.roots.filter((r) => r.name !== name).map((r) => ({ name: r.name, http: r.http })),
    rootOfNode: (node) => {
      const tree = t.nodes.get(node)?.tree;
      return tree === undefined ? undefined : rootOfTree.get(tree);
    },
  };
}

/** The nodes whose series this root holds; a central root's "nodes" are clusters' roots: links, not origins of their own. */
function expectedNodes(topology: Topology, rec: RootRecord): ReadonlySet<string> {
  return new Set(nodesOfRoot(topology, rec).filter((n) => topology.nodes.get(n)?.cluster === undefined));
}

/** Where the root's HTTP is reached, for links it gives out (an Alertmanager's generatorURL): its address, 127.0.0.1 for a wildcard. */
function generatorAddress(http: string, port: number): string {
  const host = http.replace(/:\d+$/, "");
  return `${/^(0\.0\.0\.0|\[::\])$/.test(host) ? "127.0.0.1" : host}:${port}`;
}

/** Nodes of the topology up at this root (what a cluster's root tells the central one). */
function countUp(store: RootStore, expected: ReadonlySet<string>): number {
  let n = 0;
  for (const name of expected) if (store.origin(name)?.up === true) n++;
  return n;
}

/** The value of the first series called `name` on an origin that is up; null when none has it. */
function firstValue(store: RootStore, name: string): number | null {
  for (const { origin, ids } of seriesNamed(store, name)) if (ids.length > 0) return origin.value(ids[0]!);
  return null;
}

/** The series called `name` on origins that are up, from the exposition cache's families (a histogram part's family is its base name). */
function* seriesNamed(store: RootStore, name: string): Generator<{ origin: OriginState; ids: readonly number[] }> {
  const families = new Set([name, name.replace(/_(bucket|sum|count)$/, "")]);
  for (const family of families) for (const of of store.cache.shownMembers(family)) yield { origin: of.view as OriginState, ids: of.ids };
}
