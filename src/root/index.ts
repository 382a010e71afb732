// The root's front door: its start and its config. Each room has its own (ingest/, exposition/, events/).
export { parseRootConfig } from "./root-config.js";
export { startRoot, type RootDaemon } from "./root-daemon.js";
