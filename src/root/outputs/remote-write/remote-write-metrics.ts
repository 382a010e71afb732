import type { Registry } from "prom-client";
import { counter, gauge } from "../../../core/metric-names.js";

/** What each destination reports when scraped. */
export interface RemoteWriteGauges {
  readonly url: string;
  readonly pendingSamples: number;
  readonly queueBytes: number;
  readonly shards: number;
  /** Newest sample time sent (acknowledged), ms since 1970; 0 before the first. */
  readonly highestSentMs: number;
  /** Newest sample time handed to the output, ms. */
  readonly highestQueuedMs: number;
}

const byRegistry = new WeakMap<Registry, ReturnType<typeof create>>();

/** The remote_write metrics of a root (one set for all its destinations, labelled by url), named like Prometheus' own. */
export function remoteWriteMetrics(registry: Registry) {
  let m = byRegistry.get(registry);
  if (m === undefined) byRegistry.set(registry, (m = create(registry)));
  return m;
}

function create(registry: Registry) {
  const outputs = new Set<RemoteWriteGauges>();
  const each = (read: (o: RemoteWriteGauges) => number) =>
    function (this: { set(labels: { url: string }, v: number): void; reset(): void }) {
      this.reset();
      for (const o of outputs) this.set({ url: o.url }, read(o));
    };
  return {
    outputs,
    sent: counter(registry, "banyan_remote_write_samples_sent_total", "Samples the receiver accepted.", ["url"] as const),
    failed: counter(registry, "banyan_remote_write_samples_failed_total", "Samples dropped, by reason: the receiver refused them (status_4xx, never retried), the queue was full (queue_full, oldest first), older than one already sent for their node (out_of_order), outside the receiver's time window on the root's clock (too_old, future: maxAgeMs, maxFutureMs), in a queue segment on disk that could not be read back (queue_damaged), or left in the queue at stop (stopped).", ["url", "reason"] as const),
    retried: counter(registry, "banyan_remote_write_samples_retried_total", "Samples sent again after a 5xx, a 429 or no answer.", ["url"] as const),
    split: counter(registry, "banyan_remote_write_requests_split_total", "Requests the receiver refused whole for samples it could not take (400: out of order, out of bounds, duplicate timestamp), sent again in halves so that only the refused series are lost (counted status_400).", ["url"] as const),
    requests: counter(registry, "banyan_remote_write_requests_total", "Requests by the receiver's status (0: no answer).", ["url", "code"] as const),
    bytes: counter(registry, "banyan_remote_write_sent_bytes_total", "Compressed request bytes the receiver accepted.", ["url"] as const),
    pending: gauge(registry, "banyan_remote_write_samples_pending", "Samples waiting to be sent: in batches and in the queue.", ["url"] as const, each((o) => o.pendingSamples)),
    queueBytes: gauge(registry, "banyan_remote_write_queue_bytes", "Compressed requests held for the receiver (bounded by queue.maxBytes).", ["url"] as const, each((o) => o.queueBytes)),
    shards: gauge(registry, "banyan_remote_write_shards", "Requests that may be in flight at once (queue.concurrency).", ["url"] as const, each((o) => o.shards)),
    highest: gauge(registry, "banyan_remote_write_highest_sent_timestamp_seconds", "Sample time of the newest sample the receiver accepted.", ["url"] as const, each((o) => o.highestSentMs / 1000)),
    lag: gauge(registry, "banyan_remote_write_lag_seconds", "How far the receiver is behind: newest sample handed to the output minus newest accepted.", ["url"] as const, each((o) => (o.highestSentMs > 0 ? Math.max(0, o.highestQueuedMs - o.highestSentMs) / 1000 : 0))),
  };
}
