import type { Registry } from "prom-client";
import type { Topology } from "../topology/topology-file.js";
import type { Logger } from "../core/logger.js";

/** What every daemon is started with: the topology, its own name in it, a logger and (tests) a registry. */
export interface DaemonContext {
  readonly topology: Topology;
  /** Name of the topology file, for messages. */
  readonly topologySource: string;
  readonly name: string;
  readonly log: Logger;
  readonly registry?: Registry;
}
