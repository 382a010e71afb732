import { Registry } from "prom-client";
import { nodeRecord, rootOfNode, treeAddress, treeBindAddress } from "../../topology/topology-lookup.js";
import type { Topology } from "../../topology/topology-file.js";
import type { DaemonContext } from "./daemon-context.js";
import { RelayNode, type LocalOrigin } from "./relay-node.js";
import { OriginAuthority } from "./origin-authority.js";
import { TreeTls } from "./tree-tls.js";
import type { UplinkTarget } from "./uplink-contract.js";
import { resolveLimits, resolveTreePort, type TreeNodeConfig } from "./wire-config.js";
import { defaultAckTimeoutMs, defaultHealAfterMs } from "./tree-timing.js";

/** A node in the trees as a running daemon: an agent (sampler + relay) or a dedicated relay. */
export interface NodeDaemon<S extends LocalOrigin | null = LocalOrigin | null> {
  readonly name: string;
  /** Port children connect to, 0 for a leaf. */
  readonly port: number;
  readonly relay: RelayNode;
  readonly sampler: S;
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

/**
 * Starts the node's place in the trees: the child-facing server when the topology gives it
 * children, the uplink, and the local sampler the caller makes (an agent's) or none (a relay's).
 * Shutdown: the sampler, then the children's streams, then the uplink's drain.
 */
export async function startTreeNode<S extends (LocalOrigin & { start(): void; stop(): void }) | null>(
  ctx: DaemonContext,
  config: TreeNodeConfig,
  sampler: (relay: RelayNode, registry: Registry) => S,
): Promise<NodeDaemon<S>> {
  const rec = nodeRecord(ctx.topology, ctx.name, ctx.topologySource);
  const tls = config.tree.tls !== undefined ? new TreeTls(config.tree.tls, ctx.name, ctx.topology) : null;
  const registry = ctx.registry ?? new Registry();
  const log = ctx.log.child({ node: ctx.name });
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
      limits: resolveLimits(config.limits),
      treePort: resolveTreePort(config.tree),
      authority,
      ...(tls !== null ? { tls } : {}),
    },
    log,
    registry,
  );
  const s = sampler(relay, registry);
  if (s !== null) relay.attachLocal(s);
  const port = await relay.start();
  s?.start();
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
    sampler: s,
    registry,
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
    async stop(drainMs = 1000) {
      s?.stop();
      await relay.stop(drainMs);
    },
  };
}
