import { handshakeRefusals } from "./handshake-refusal.js";
import type { Registry } from "prom-client";
import { counter, gauge } from "../core/metric-names.js";

/** What the uplink's gauges read when scraped. */
export interface UplinkView {
  readonly queuedFrames: number;
  readonly queuedBytes: number;
  readonly fallbackPosition: number;
}

/** An uplink session's metrics, registered into the daemon's registry. */
export function uplinkMetrics(registry: Registry, view: UplinkView) {
  return {
    frames: counter(registry, "banyan_uplink_frames_sent_total", "Frames sent to the parent."),
    bytes: counter(registry, "banyan_uplink_payload_bytes_sent_total", "Frame payload bytes sent to the parent."),
    batches: counter(registry, "banyan_uplink_batches_sent_total", "Batches sent to the parent."),
    dropped: counter(registry, "banyan_uplink_dropped_frames_total", "Frames dropped: the queue toward the parent overflowed, or a frame could never fit in a message."),
    transitions: counter(registry, "banyan_uplink_transitions_total", "Uplink state changes.", ["to"] as const),
    failovers: counter(registry, "banyan_uplink_failovers_total", "Moves to the next parent of the fallback chain after a failure."),
    replayed: counter(registry, "banyan_uplink_frames_replayed_total", "Frames the failed parent had acked lately, sent again the new way (the root drops those it had as duplicates)."),
    heals: counter(registry, "banyan_uplink_heals_total", "Moves back to the planned parent."),
    handshakes: handshakeRefusals(registry),
    replaced: counter(registry, "banyan_uplink_replaced_total", "Streams the parent ended because another process with this node's name opened one (two agents with one name)."),
    queued: gauge(registry, "banyan_uplink_queued_frames", "Frames waiting for the parent.", [], function () {
      this.set(view.queuedFrames);
    }),
    queuedBytes: gauge(registry, "banyan_uplink_queued_bytes", "Bytes of frames waiting for the parent (bounded at 4 × the message limit).", [], function () {
      this.set(view.queuedBytes);
    }),
    away: gauge(registry, "banyan_uplink_fallback_position", "Position of the current parent in the chain (0: the planned parent).", [], function () {
      this.set(view.fallbackPosition);
    }),
  };
}
