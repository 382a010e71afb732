// The agent's front door: its start, its config and the sources a bench drives on their own.
export { parseAgentConfig } from "./agent-config.js";
export { startAgent } from "./agent-daemon.js";
export { AGENT_NODE_FLAGS } from "./node-flags.js";
export { NodeSource } from "./node-source.js";
export { applyScheduling } from "./scheduling.js";
export { SyntheticSource } from "./synthetic-source.js";
