import type { DaemonContext } from "../wire/daemon-context.js";
import { startTreeNode, type NodeDaemon } from "../wire/tree-node.js";
import type { RelayConfig } from "./relay-config.js";

/** A dedicated relay: forwards its children's frames, samples nothing. */
export function startRelay(ctx: DaemonContext, config: Readonly<RelayConfig>): Promise<NodeDaemon<null>> {
  return startTreeNode(ctx, config, () => null);
}
