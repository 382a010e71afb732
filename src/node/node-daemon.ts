import { Registry } from "prom-client";
import { ServiceList } from "../core/service.js";
import { nodeRecord, rootOfNode, samplingBranch, treeAddress, treeBindAddress } from "../topology/topology-lookup.js";
import type { Topology } from "../topology/topology-file.js";
import { defaultStartSpreadMs } from "../series/keyframe-schedule.js";
import type { PrecisionRule } from "../series/precision.js";
import type { DaemonContext } from "./daemon-context.js";
import { NodeStatusSource } from "./node-status-source.js";
import { RelayNode } from "./relay-node.js";
import { Sampler } from "./sampler.js";
import type { Source } from "./source.js";
import { OriginAuthority } from "../wire/origin-authority.js";
import { TreeTls } from "../wire/tree-tls.js";
import type { UplinkTarget } from "../wire/uplink-contract.js";
import { resolveLimits, resolveTreePort, type TreeNodeConfig } from "../wire/wire-config.js";
import { defaultAckTimeoutMs, defaultHealAfterMs } from "../wire/tree-timing.js";

/** A node in the trees as a running daemon: an agent or a dedicated relay, each a sampler and a relay. */
export interface NodeDaemon {
  readonly name: string;
  /** Port children connect to, 0 for a leaf. */
  readonly port: number;
  readonly relay: RelayNode;
  readonly sampler: Sampler;
  readonly registry: Registry;
  /** Follows a new topology: a changed parent moves the uplink. */
  reload(topology: Topology): void;
  /** Stops sampling, closes the children's streams, and waits up to `drainMs` for the last acks. */
  stop(drainMs?: number): Promise<void>;
}

/** The planned parent, then the fallbacks, with their addresses. */
export function chainOf(topology: Topology, name: string, source: string): UplinkTarget[] {
  const rec = nodeRecord(topology, name, source);
  return [rec.parent, ...rec.fallbacks].map((n) => ({ name: n, address: treeAddress(topology, n), root: rootOfNode(topology, n) }));
}

/** What a node samples: an agent its host's sources, a relay none but its place in the trees. */
export interface NodeSampling {
  /** `job` label added to every series that has none. */
  readonly job: string;
  readonly keyframeIntervalMs: number;
  /** The first keyframe waits for the node's phase within this window; default: spread by the topology's size. */
  readonly startSpreadMs?: number;
  /** The site's precision rules (the documented defaults follow them). */
  readonly precision: readonly PrecisionRule[];
  /** The node's sources; its place in the trees (NodeStatusSource) is sampled after them. */
  readonly sources: readonly Source[];
}

/**
 * Starts a node of the trees, the runtime an agent and a relay share: the child-facing server when
 * the topology gives it children, the uplink, and the sampler of `sampling`'s sources with the
 * node's own status, at the phase of its branch of the trees.
 * Its services: the tree links (child server and uplink), then the sampler; shutdown in reverse:
 * the sampler, then the children's streams, then the uplink's drain.
 */
export async function startNode(ctx: DaemonContext, config: TreeNodeConfig, sampling: NodeSampling): Promise<NodeDaemon> {
  const rec = nodeRecord(ctx.topology, ctx.name, ctx.topologySource);
  const tls = config.tree.tls !== undefined ? new TreeTls(config.tree.tls, ctx.name, ctx.topology) : null;
  const registry = ctx.registry ?? new Registry();
  const log = ctx.log.child({ node: ctx.name });
  const limits = resolveLimits(config.limits);
  const authority = new OriginAuthority(ctx.topology);
  const relay = new RelayNode(
    {
      name: ctx.name,
      tree: rec.tree,
      chain: chainOf(ctx.topology, ctx.name, ctx.topologySource),
      listen: rec.children.length > 0 ? (config.listen ?? (await treeBindAddress(rec.address, ctx.topologySource))) : null,
      plannedChildren: rec.children,
      intervalMs: config.intervalMs,
      flushMs: config.flushMs,
      ackTimeoutMs: config.ackTimeoutMs ?? defaultAckTimeoutMs(config.intervalMs),
      maxQueuedFrames: config.maxQueuedFrames,
      healAfterMs: config.healAfterMs ?? defaultHealAfterMs(config.intervalMs),
      limits,
      treePort: resolveTreePort(config.tree),
      authority,
      ...(tls !== null ? { tls } : {}),
    },
    log,
    registry,
  );
  // The status source reads the sampler's last tick, once both run.
  const status = NodeStatusSource.of(relay, () => sampler.lastTickSeconds);
  const sampler = new Sampler(
    {
      origin: ctx.name,
      intervalMs: config.intervalMs,
      keyframeIntervalMs: sampling.keyframeIntervalMs,
      startSpreadMs: sampling.startSpreadMs ?? defaultStartSpreadMs(ctx.topology.nodes.size, sampling.keyframeIntervalMs),
      job: sampling.job,
      precision: sampling.precision,
      limits,
      phaseOf: samplingBranch(ctx.topology, ctx.name),
    },
    [...sampling.sources, status],
    relay,
    log.child({ part: "sampler" }),
    registry,
    () => relay.localTick(),
  );
  relay.attachLocal(sampler);
  let port = 0;
  let drainMs = 1000;
  const services = new ServiceList<Topology>(log);
  services.add(
    {
      name: "tree links",
      start: async () => void (port = await relay.start()),
      reload(topology) {
        authority.setTopology(topology);
        if (tls !== null) {
          // New certificates (renewed, or a new CA bundle) for the connections made from now on.
          tls.setTopology(topology);
          tls.reload();
          relay.refreshTls();
          log.info({ certificate: tls.shown }, "tree TLS files read again: new connections show this certificate");
        }
        relay.uplink.setChain(chainOf(topology, ctx.name, ctx.topologySource), "topology reloaded");
      },
      stop: () => relay.stop(drainMs),
    },
    { name: "sampler", start: () => sampler.start(), stop: () => sampler.stop() },
  );
  await services.start();
  log.info(
    { parent: rec.parent, children: rec.children.length, port, ...(tls !== null ? { certificate: tls.shown } : {}) },
    port > 0
      ? `node ${ctx.name} ready: relays ${rec.children.length} children on port ${port}, parent ${rec.parent}; ${tls !== null ? "mutual TLS on the tree" : "the tree is not authenticated (no tree.tls), so the port listens on the topology's address only"}`
      : `node ${ctx.name} ready: leaf, parent ${rec.parent}${tls !== null ? "; mutual TLS on the tree" : ""}`,
  );
  return {
    name: ctx.name,
    port,
    relay,
    sampler,
    registry,
    reload: (topology) => services.reload(topology),
    stop(drain = 1000) {
      drainMs = drain;
      return services.stop();
    },
  };
}
