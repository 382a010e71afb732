// The ingest room's front door: the store, an origin's state, the aggregates.
export { AggregateEngine } from "./aggregates.js";
export { OriginState } from "./origin-state.js";
export { RootStore } from "./root-store.js";
