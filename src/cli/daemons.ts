import { Registry } from "prom-client";
import { bindAddress, nodeRecord, nodesOfRoot, rootRecord, treeAddress } from "../../topology/topology-lookup.js";
import type { Topology } from "../../topology/topology-file.js";
import type { Logger } from "../core/logger.js";
import { NodeStatusSource } from "../agent/node-status-source.js";
import { NodeSource } from "../agent/node-source.js";
import type { GpuReadings } from "../agent/gpu-readings.js";
import { NvidiaSmiSource } from "../agent/nvidia-smi-source.js";
import { ScrapeSource } from "../agent/scrape-source.js";
import { SlurmSource } from "../agent/slurm/slurm-source.js";
import { Sampler } from "../agent/sampler.js";
import type { Source } from "../agent/source.js";
import { SyntheticSource } from "../agent/synthetic-source.js";
import type { AgentConfig } from "../agent/agent-config.js";
import { ChildServer } from "../relay/child-server.js";
import type { RelayConfig } from "../relay/relay-config.js";
import { RelayNode } from "../relay/relay-node.js";
import { AggregateEngine } from "../root/aggregates.js";
import { RootHttpServer } from "../root/http-server.js";
import { RootJobs } from "../root/root-jobs.js";
import { RootStatus, nodesReport, type StatusPlan } from "../root/root-status.js";
import type { RootConfig } from "../root/root-config.js";
import { renderRootPage } from "../root/root-page.js";
import { RootStore } from "../root/root-store.js";
import { defaultStartSpreadMs } from "../series/keyframe-schedule.js";
import { resolveLimits } from "../wire/wire-config.js";
import { startJobs } from "./agent-jobs.js";
import type { UplinkTarget } from "../wire/uplink-contract.js";

/**
 * How the daemons are put together; the CLI, the tests and the bench start them through these
 * calls, each one function call to start and one `stop()`. The daemon folders never import each
 * other: this file is where they meet.
 *
 *   root  = ChildServer → RootStore (+ aggregates) ← RootHttpServer; resyncs go back down the ChildServer
 *   agent = Sampler → RelayNode (ChildServer when the topology gives children → UplinkSession)
 *   relay = RelayNode alone
 *
 * Shutdown order: stop accepting (HTTP, then children), drain the uplink, stop timers.
 */
export interface RootDaemon {
  readonly name: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly store: RootStore;
  readonly registry: Registry;
  /** The /metrics page as a string (tests; the HTTP server sends the bytes). */
  render(format?: "text" | "openmetrics"): Promise<string>;
  /** Applies a new config (aggregates, exposeRaw, deadAfterMs) and topology (expected nodes). */
  reload(config: Readonly<RootConfig>, topology: Topology): void;
  stop(): Promise<void>;
}

export interface DaemonContext {
  readonly topology: Topology;
  /** Name of the topology file, for messages. */
  readonly topologySource: string;
  readonly name: string;
  readonly log: Logger;
  readonly registry?: Registry;
}

export async function startRoot(ctx: DaemonContext, config: Readonly<RootConfig>): Promise<RootDaemon> {
  const rec = rootRecord(ctx.topology, ctx.name, ctx.topologySource);
  const registry = ctx.registry ?? new Registry();
  const log = ctx.log.child({ root: ctx.name });
  const limits = resolveLimits(config.limits);
  const deadAfterMs = (cfg: Readonly<RootConfig>): number => cfg.deadAfterMs ?? 3 * cfg.intervalMs;
  let aggregates = new AggregateEngine(config.aggregates);
  let expected = new Set(nodesOfRoot(ctx.topology, rec));
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
  };
  const store = new RootStore(storeOpts, aggregates, log, registry);
  const server = new ChildServer(store, limits, log.child({ part: "children" }), registry);
  store.connectDownlink({ resync: (origins) => void server.routeResync(origins) });
  const status = new RootStatus(statusPlan(ctx.topology, ctx.name, ctx.topologySource));
  store.onResyncRequested((origin) => status.recordResync(origin));
  const page = (format: "text" | "openmetrics"): Promise<Buffer[]> => renderRootPage(format, store, aggregates, expected, registry, exposeRaw, ctx.name);
  const render = async (format: "text" | "openmetrics" = "text"): Promise<string> => Buffer.concat(await page(format)).toString("utf8");
  const http = new RootHttpServer(page, log, registry, config.gzipLevel);
  http.route("/api/v1/status", async () => ({ status: 200, type: "application/json", body: JSON.stringify(status.report(store)) }));
  const jobs = new RootJobs(store);
  jobs.start();
  http.route("/api/v1/jobs", async (_req, url) => {
    const id = decodeURIComponent(url.pathname.slice("/api/v1/jobs".length).replace(/^\//, ""));
    if (id === "") return { status: 200, type: "application/json", body: JSON.stringify(jobs.list()) };
    const j = jobs.get(id);
    return j === undefined ? { status: 404, type: "application/json", body: JSON.stringify({ error: `no job ${id} seen at this root` }) } : { status: 200, type: "application/json", body: JSON.stringify(j) };
  });
  http.route("/api/v1/self", async () => ({ status: 200, type: "text/plain; version=0.0.4; charset=utf-8", body: await registry.metrics() }));
  http.route("/api/v1/nodes", async () => ({ status: 200, type: "application/json", body: JSON.stringify(nodesReport(store)) }));
  const grpcPort = await server.listen(config.listen ?? bindAddress(rec.address));
  const httpPort = await http.listen(config.http ?? bindAddress(rec.http));
  store.start();
  http.setReady(true);
  log.info({ grpc: grpcPort, http: httpPort, trees: rec.trees, nodes: expected.size }, `root ${ctx.name} ready: trees on port ${grpcPort}, /metrics on port ${httpPort}`);
  return {
    name: ctx.name,
    grpcPort,
    httpPort,
    store,
    registry,
    render,
    reload(cfg, topology) {
      aggregates = new AggregateEngine(cfg.aggregates);
      store.setAggregates(aggregates);
      exposeRaw = cfg.exposeRaw;
      http.setGzipLevel(cfg.gzipLevel);
      store.setDeadAfterMs(deadAfterMs(cfg));
      expected = new Set(nodesOfRoot(topology, rootRecord(topology, ctx.name, ctx.topologySource)));
      status.setPlan(statusPlan(topology, ctx.name, ctx.topologySource));
      log.info({ aggregates: cfg.aggregates.length, exposeRaw }, "root reloaded its config and topology");
    },
    async stop() {
      http.setReady(false);
      await http.stop();
      await server.stop();
      store.stop();
      jobs.stop();
    },
  };
}

/** The topology as the root's status page needs it. */
function statusPlan(t: Topology, name: string, source: string): StatusPlan {
  const rec = rootRecord(t, name, source);
  const treeOf = new Map<string, number>();
  const plannedParent = new Map<string, string>();
  const nodesOfTree = new Map<number, string[]>();
  for (const [n, r] of t.nodes) {
    treeOf.set(n, r.tree);
    plannedParent.set(n, r.parent);
    let list = nodesOfTree.get(r.tree);
    if (list === undefined) nodesOfTree.set(r.tree, (list = []));
    list.push(n);
  }
  const rootOfTree = new Map<number, string>();
  for (const r of t.roots) for (const tree of r.trees) rootOfTree.set(tree, r.name);
  return { root: name, trees: rec.trees, treeOf, plannedParent, nodesOfTree, rootOfTree };
}

export interface NodeDaemon {
  readonly name: string;
  /** Port children connect to, 0 for a leaf. */
  readonly port: number;
  readonly relay: RelayNode;
  readonly sampler: Sampler | null;
  readonly registry: Registry;
  /** Follows a new topology: a changed parent moves the uplink. */
  reload(topology: Topology): void;
  /** Stops sampling, closes the children's streams, and waits up to `drainMs` for the last acks. */
  stop(drainMs?: number): Promise<void>;
}

type NodeConfig = Readonly<Pick<RelayConfig, "listen" | "intervalMs" | "flushMs" | "maxQueuedFrames" | "ackTimeoutMs" | "healAfterMs" | "limits">>;

/** The planned parent, then the fallbacks, with their addresses. */
function chainOf(topology: Topology, name: string, source: string): UplinkTarget[] {
  const rec = nodeRecord(topology, name, source);
  return [rec.parent, ...rec.fallbacks].map((n) => ({ name: n, address: treeAddress(topology, n) }));
}

async function startNode(ctx: DaemonContext, config: NodeConfig, sampler: (relay: RelayNode, registry: Registry) => Sampler | null): Promise<NodeDaemon> {
  const rec = nodeRecord(ctx.topology, ctx.name, ctx.topologySource);
  const registry = ctx.registry ?? new Registry();
  const log = ctx.log.child({ node: ctx.name });
  const relay = new RelayNode(
    {
      name: ctx.name,
      tree: rec.tree,
      chain: chainOf(ctx.topology, ctx.name, ctx.topologySource),
      listen: rec.children.length > 0 ? (config.listen ?? bindAddress(rec.address)) : null,
      plannedChildren: rec.children,
      intervalMs: config.intervalMs,
      flushMs: config.flushMs,
      ackTimeoutMs: config.ackTimeoutMs ?? 2 * config.intervalMs,
      maxQueuedFrames: config.maxQueuedFrames,
      healAfterMs: config.healAfterMs ?? 10 * config.intervalMs,
      limits: resolveLimits(config.limits),
    },
    log,
    registry,
  );
  const s = sampler(relay, registry);
  if (s !== null) relay.attachLocal(s);
  const port = await relay.start();
  s?.start();
  log.info(
    { parent: rec.parent, children: rec.children.length, port },
    port > 0 ? `node ${ctx.name} ready: relays ${rec.children.length} children on port ${port}, parent ${rec.parent}` : `node ${ctx.name} ready: leaf, parent ${rec.parent}`,
  );
  return {
    name: ctx.name,
    port,
    relay,
    sampler: s,
    registry,
    reload(topology) {
      relay.uplink.setChain(chainOf(topology, ctx.name, ctx.topologySource), "topology reloaded");
    },
    async stop(drainMs = 1000) {
      s?.stop();
      await relay.stop(drainMs);
    },
  };
}

/** An agent: samples this node and, when the topology gives it children, relays theirs. */
export async function startAgent(ctx: DaemonContext, config: Readonly<AgentConfig>, sources?: readonly Source[]): Promise<NodeDaemon> {
  // Local exporters and nvidia-smi; the GPU-capable ones also tell the jobs how busy their GPUs are.
  const gpuSources: (Source & GpuReadings)[] = config.sources.scrape.map(
    (t) => new ScrapeSource({ url: t.url, job: t.job, intervalMs: t.intervalMs ?? config.intervalMs, timeoutMs: t.timeoutMs ?? Math.max(100, Math.floor(config.intervalMs / 2)) }, ctx.log.child({ node: ctx.name, part: "scrape" })),
  );
  if (config.sources.nvidiaSmi.enabled) gpuSources.push(new NvidiaSmiSource(config.sources.nvidiaSmi.path, config.intervalMs, ctx.log.child({ node: ctx.name, part: "gpu" })));
  const jobs = config.jobs.enabled ? await startJobs(ctx, config, gpuSources) : null;
  const node = await startNode(ctx, config, (relay, registry) => {
    const status = new NodeStatusSource(() => ({ parent: relay.uplink.currentTarget.name, planned: relay.uplink.plannedTarget.name, failovers: relay.uplink.failovers, failoversLastHour: relay.uplink.failoversLastHour }));
    const extra: Source[] = [...gpuSources];
    if (config.sources.slurm.enabled) extra.push(new SlurmSource(config.sources.slurm, ctx.log.child({ node: ctx.name, part: "slurm" })));
    const src = [...(sources ?? [defaultSource(ctx.name, config)]), ...extra, ...(jobs?.sources ?? []), status];
    return new Sampler(
      {
        origin: ctx.name,
        intervalMs: config.intervalMs,
        keyframeIntervalMs: config.keyframeIntervalMs,
        startSpreadMs: config.startSpreadMs ?? defaultStartSpreadMs(ctx.topology.nodes.size, config.keyframeIntervalMs),
        job: config.job ?? (config.source === "procfs" ? "node" : "synthetic"),
        precision: config.precision,
      },
      src,
      relay,
      ctx.log.child({ node: ctx.name, part: "sampler" }),
      registry,
      () => relay.localTick(),
    );
  });
  if (jobs === null) return node;
  return {
    ...node,
    async stop(drainMs?: number) {
      await node.stop(drainMs);
      await jobs.stop();
    },
  };
}

/** A dedicated relay: forwards its children's frames, samples nothing. */
export function startRelay(ctx: DaemonContext, config: Readonly<RelayConfig>): Promise<NodeDaemon> {
  return startNode(ctx, config, () => null);
}

export function defaultSource(name: string, config: Readonly<AgentConfig>): Source {
  return config.source === "synthetic"
    ? new SyntheticSource({ ...config.synthetic, node: name })
    : new NodeSource(
        { proc: config.procfs.path, sys: config.procfs.sys, rootfs: config.procfs.rootfs, mountPointsExclude: config.procfs.mountPointsExclude, fsTypesExclude: config.procfs.fsTypesExclude, netdevExclude: config.procfs.netdevExclude },
        config.procfs.disable,
      );
}
