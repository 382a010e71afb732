import type { Registry } from "prom-client";
import { defaultStartSpreadMs } from "../series/keyframe-schedule.js";
import type { DaemonContext } from "../wire/daemon-context.js";
import { NodeStatusSource } from "../wire/node-status-source.js";
import type { RelayNode } from "../wire/relay-node.js";
import { Sampler } from "../wire/sampler.js";
import { startTreeNode, type NodeDaemon } from "../wire/tree-node.js";
import { samplingBranch } from "../../topology/topology-lookup.js";
import { resolveLimits } from "../wire/wire-config.js";
import type { RelayConfig } from "./relay-config.js";

/** Keyframe interval of the relay's own few series (the agents' default). */
const KEYFRAME_INTERVAL_MS = 60_000;

/**
 * A dedicated relay: forwards its children's frames and collects nothing of its host. It does send
 * its own place in the trees (`banyan_node_parent_info`, `banyan_node_failovers_*`, job "relay"),
 * so the roots and `topology status` see it up, and see where it went after a failover.
 */
export function startRelay(ctx: DaemonContext, config: Readonly<RelayConfig>): Promise<NodeDaemon<Sampler>> {
  return startTreeNode(ctx, config, (relay: RelayNode, registry: Registry) => {
    let sampler: Sampler | null = null;
    const status = NodeStatusSource.of(relay, () => sampler?.lastTickSeconds);
    sampler = new Sampler(
      {
        origin: ctx.name,
        intervalMs: config.intervalMs,
        keyframeIntervalMs: KEYFRAME_INTERVAL_MS,
        startSpreadMs: defaultStartSpreadMs(ctx.topology.nodes.size, KEYFRAME_INTERVAL_MS),
        job: "relay",
        precision: [],
        limits: resolveLimits(config.limits),
        phaseOf: samplingBranch(ctx.topology, ctx.name),
      },
      [status],
      relay,
      ctx.log.child({ node: ctx.name, part: "sampler" }),
      registry,
      () => relay.localTick(),
    );
    return sampler;
  });
}
