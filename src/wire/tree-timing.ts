/**
 * The tree's timing, derived from its sampling interval so that the parts fit by construction
 * rather than as independent numbers. When a relay goes silent (power lost: no RST, no FIN), a
 * child's newest sample at the roots ages by:
 *   its last delivered tick to the first one sent into the silence   1 × interval
 * + the ack timeout that detects the silent parent                     ackTimeoutMs (default 1 × interval)
 * + the failover: a stream to the grandparent, the taken-back batch    ≤ 1 × interval (ms on a LAN)
 * and the roots' liveness (`deadAfterMs`) defaults to that sum plus one interval of margin,
 * 4 × interval: a child of a dead relay is late, never shown down. Measured on emulated hosts
 * (`banyan bench --hosts netns --scenario blackhole`, 20 hosts on 2 cores): with the former
 * defaults (ack timeout 2 × interval, deadAfterMs 3 × interval) the oldest child sample reached
 * 2.98-3.02 s against a deadAfterMs of 3 s; with these, 2.98-3.02 s against 4 s (the failover's
 * term took ~0.7 s on a machine running 20 daemons on 2 cores).
 * A parent that is only slow is not given up at the ack timeout: it gets up to 4 × its recent
 * slowest ack, at most 10 × the timeout (ParentStream.ackTimeoutMs).
 */
export function defaultAckTimeoutMs(intervalMs: number): number {
  return intervalMs;
}

/** A new stream (TCP, TLS, Hello) must be answered within this: as before, 2 × interval, never under the ack timeout. */
export function connectTimeoutMs(intervalMs: number, ackTimeoutMs: number): number {
  return Math.max(ackTimeoutMs, 2 * intervalMs);
}

/** The roots' default: silent past this, a node is down (the budget above, one interval to spare). */
export function defaultDeadAfterMs(intervalMs: number): number {
  return intervalMs + defaultAckTimeoutMs(intervalMs) + intervalMs + intervalMs;
}

/** After a failover, the planned parent answers probes this long before the node moves back. */
export function defaultHealAfterMs(intervalMs: number): number {
  return 10 * intervalMs;
}

/**
 * The longest wait between probes of a planned parent that does not answer: half of healAfterMs
 * (1-30 s). Backing off to 30 s made a relay back after a 60 s outage wait 22-49 s for its children
 * where healAfterMs is 10 s; a probe is one small stream, two children's probes a few seconds
 * apart cost nothing.
 */
export function probeBackoffCapMs(healAfterMs: number): number {
  return Math.min(30_000, Math.max(1000, Math.floor(healAfterMs / 2)));
}

/**
 * A deliberate move keeps the old stream this long after the new one is ready (make-before-break,
 * Handover): a tick for the first frames the new way, and a root's keyframe request back (its
 * resync requests leave every 100 ms, under a budget) before the old root is told LEAVE. 3 ×
 * interval: with 2 ×, a move back to a root after an outage let the old root go before the new
 * root had asked its keyframes (they came 2.06 s after the new stream was ready on emulated hosts),
 * and the nodes showed at neither root for ~1 s.
 */
export function handoverMs(intervalMs: number): number {
  return 3 * intervalMs;
}
