// The node runtime's front door (what the bench may use of it; the daemons import its files).
export { startNode, type NodeDaemon, type NodeSampling } from "./node-daemon.js";
export type { DaemonContext } from "./daemon-context.js";
export { Sampler, slotAfter } from "./sampler.js";
export type { SampleTarget, Source } from "./source.js";
