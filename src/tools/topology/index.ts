// The topology tools' front door: generate, the central topology, render, statistics.
export { generateCentralTopology } from "./central.js";
export { generateTopology } from "./generate.js";
export { renderTopology } from "./renderers.js";
export { topologyStats } from "./topology-stats.js";
