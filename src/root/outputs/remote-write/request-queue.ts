/** A compressed request waiting for the receiver. */
export interface QueuedRequest {
  readonly body: Buffer;
  readonly samples: number;
  /** Newest sample time in it, ms (0 for metadata). */
  readonly newestMs: number;
  /** Staleness markers only: a refusal (one may be older than what another root wrote since) loses no data. */
  readonly stale: boolean;
  /** Written as remote_write 2.0 (else 1.0). */
  readonly v2: boolean;
}

/** One shard's requests in order: the head is sent (and re-sent) until acknowledged. */
export interface RequestQueue {
  readonly length: number;
  readonly bytes: number;
  readonly samples: number;
  push(r: QueuedRequest): void;
  /** The oldest request not yet acknowledged, or null. */
  head(): QueuedRequest | null;
  /** The head was sent (or refused for good): the next becomes the head. */
  ack(): void;
  /**
   * Drops the oldest requests that are not the head in flight, about `minBytes` worth at least
   * (a whole segment on disk); returns the samples dropped, 0 when there was nothing to drop.
   */
  dropOldest(inFlight: boolean): number;
  close(): void;
}

export class MemoryQueue implements RequestQueue {
  private readonly items: QueuedRequest[] = [];
  bytes = 0;
  samples = 0;

  get length(): number {
    return this.items.length;
  }

  push(r: QueuedRequest): void {
    this.items.push(r);
    this.bytes += r.body.length;
    this.samples += r.samples;
  }

  head(): QueuedRequest | null {
    return this.items[0] ?? null;
  }

  ack(): void {
    const r = this.items.shift();
    if (r === undefined) return;
    this.bytes -= r.body.length;
    this.samples -= r.samples;
  }

  dropOldest(inFlight: boolean): number {
    const k = inFlight ? 1 : 0;
    if (this.items.length <= k) return 0;
    const [r] = this.items.splice(k, 1);
    this.bytes -= r!.body.length;
    this.samples -= r!.samples;
    return r!.samples;
  }

  close(): void {
    this.items.length = 0;
    this.bytes = 0;
    this.samples = 0;
  }
}
