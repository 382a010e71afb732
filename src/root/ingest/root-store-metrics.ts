import type { Registry } from "prom-client";
import { Histogram } from "prom-client";
import { counter, gauge, tallied } from "../../core/metric-names.js";
import type { OriginState } from "./origin-state.js";

/** What the root store's gauges read when scraped. */
export interface RootStoreView {
  /** Tallies kept as plain numbers on the hot path (one frame, many samples) and read when scraped. */
  readonly tally: IngestTally;
  readonly backlogMs: number;
  readonly resyncsWaiting: number;
  readonly resyncRatePerS: number;
  readonly heldBytes: number;
  readonly waitingBytes: number;
  readonly familyConflicts: number;
  /** Series left off the last page (see ExpositionCache.offPage). */
  readonly offPage: { readonly reserved: number; readonly shadowed: number; readonly malformed: number };
  readonly memory: { readonly budget: number; readonly used: number; readonly over: boolean };
  origins(): Iterable<OriginState>;
}

/** What the store counts per frame, as plain numbers: a labelled prom-client inc per frame cost more than applying it. */
export interface IngestTally {
  payloadBytes: number;
  updates: number;
  key: number;
  values: number;
  delta: number;
}

export const newIngestTally = (): IngestTally => ({ payloadBytes: 0, updates: 0, key: 0, values: 0, delta: 0 });

/** The root store's metrics, registered into the root's registry. */
export function rootStoreMetrics(registry: Registry, view: RootStoreView) {
  return {
    frames: tallied(registry, "banyan_root_frames_applied_total", "Frames applied to the store.", ["kind"] as const, function () {
      this.reset();
      this.inc({ kind: "key" }, view.tally.key);
      this.inc({ kind: "values" }, view.tally.values);
      this.inc({ kind: "delta" }, view.tally.delta);
    }),
    bytes: tallied(registry, "banyan_root_payload_bytes_total", "Frame payload bytes received (compressed, as on the wire).", [], function () {
      this.reset();
      this.inc(view.tally.payloadBytes);
    }),
    updates: tallied(registry, "banyan_root_series_updates_total", "Series values updated by frames.", [], function () {
      this.reset();
      this.inc(view.tally.updates);
    }),
    dropped: counter(registry, "banyan_root_frames_dropped_total", "Frames dropped.", ["reason"] as const),
    held: counter(registry, "banyan_root_frames_held_total", "Frames that came ahead of a gap in their origin's sequence and were held for the late ones."),
    decodeErrors: counter(registry, "banyan_root_decode_errors_total", "Frames whose payload could not be decoded."),
    resyncs: counter(registry, "banyan_root_resyncs_requested_total", "Keyframes requested from origins.", ["reason"] as const),
    left: counter(registry, "banyan_root_nodes_left_total", "Nodes that announced they moved to another parent (their series left this root at once)."),
    down: counter(registry, "banyan_root_nodes_down_total", "Times a node that was up was marked down (silent past deadAfterMs plus the root's backlog)."),
    sweepsStalled: counter(registry, "banyan_root_sweeps_stalled_total", "Liveness sweeps that ran late (the event loop was blocked) and so marked no node down."),
    backlog: gauge(registry, "banyan_root_ingest_backlog_seconds", "How far behind its input the root was at the last sweep (added to deadAfterMs).", [], function () {
      this.set(view.backlogMs / 1000);
    }),
    resyncWaiting: gauge(registry, "banyan_root_resyncs_waiting", "Origins waiting for their keyframe request to leave (the resync budget).", [], function () {
      this.set(view.resyncsWaiting);
    }),
    resyncRate: gauge(registry, "banyan_root_resync_rate_per_second", "Keyframe requests this root sends at most per second.", [], function () {
      this.set(view.resyncRatePerS);
    }),
    waitingBytes: gauge(registry, "banyan_root_input_waiting_bytes", "Bytes of links' batches received and acked but not yet applied (past 4 × maxMessageBytes links wait).", [], function () {
      this.set(view.waitingBytes);
    }),
    heldBytes: gauge(registry, "banyan_root_held_frame_bytes", "Bytes of frames held for a gap in their origin's sequence (bounded at 64 MiB).", [], function () {
      this.set(view.heldBytes);
    }),
    memoryBudget: gauge(registry, "banyan_root_memory_budget_bytes", "Heap and external memory past which the root takes no new origin and lets no origin grow.", [], function () {
      this.set(view.memory.budget);
    }),
    memoryUsed: gauge(registry, "banyan_root_memory_used_bytes", "Heap and external memory in use at the last sample (against the budget).", [], function () {
      this.set(view.memory.used);
    }),
    conflicts: gauge(registry, "banyan_root_family_conflicts", "Origins' families left off the page: they give the family another TYPE than most origins on the page do.", [], function () {
      this.set(view.familyConflicts);
    }),
    offPage: gauge(registry, "banyan_root_series_off_page", "Nodes' series left off the last page, which they would have made invalid: reserved (a family the root writes itself: banyan_node_up, its own metrics, the aggregates), shadowed (a family named like a sample of a histogram or summary on the page), malformed (a summary's quantile or a histogram's le that is not a number).", ["reason"] as const, function () {
      const off = view.offPage;
      this.set({ reason: "reserved" }, off.reserved);
      this.set({ reason: "shadowed" }, off.shadowed);
      this.set({ reason: "malformed" }, off.malformed);
    }),
    nodesUp: gauge(registry, "banyan_root_nodes_up", "Origins currently up at this root.", [], function () {
      let n = 0;
      for (const o of view.origins()) if (o.up) n++;
      this.set(n);
    }),
    series: gauge(registry, "banyan_root_series", "Series held for origins that are up.", [], function () {
      let n = 0;
      for (const o of view.origins()) if (o.up) n += o.seriesCount;
      this.set(n);
    }),
    latency: new Histogram({
      name: "banyan_root_frame_latency_seconds",
      help: "Time from sampling at the origin to applying at the root.",
      // Fine enough for the bench to read p50/p99 off it.
      buckets: [0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10],
      registers: [registry],
    }),
  };
}
