import type { DaemonContext } from "../node/daemon-context.js";
import { startNode, type NodeDaemon } from "../node/node-daemon.js";
import type { RelayConfig } from "./relay-config.js";

/** Keyframe interval of the relay's own few series (the agents' default). */
const KEYFRAME_INTERVAL_MS = 60_000;

/**
 * A dedicated relay: forwards its children's frames and collects nothing of its host. It does send
 * its own place in the trees (`banyan_node_parent_info`, `banyan_node_failovers_*`, job "relay"),
 * so the roots and `topology status` see it up, and see where it went after a failover.
 */
export function startRelay(ctx: DaemonContext, config: Readonly<RelayConfig>): Promise<NodeDaemon> {
  return startNode(ctx, config, { job: "relay", keyframeIntervalMs: KEYFRAME_INTERVAL_MS, precision: [], sources: [] });
}
