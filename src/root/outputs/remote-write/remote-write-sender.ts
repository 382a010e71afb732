import { compress as zstdCompress, init as zstdInit } from "@bokuweb/zstd-wasm";
import type { Registry } from "prom-client";
import { compressSync, uncompressSync } from "snappy";
import type { Backoff } from "../../../core/backoff.js";
import { LimitedWarning, type Logger } from "../../../core/logger.js";
import type { RemoteWriteClient, SendResult } from "./remote-write-client.js";
import type { RemoteWriteConfig } from "./remote-write-config.js";
import { remoteWriteMetrics } from "./remote-write-metrics.js";
import type { RequestQueue } from "./request-queue.js";
import { v2ToV1 } from "./write-request-v2.js";
import { SPLIT_WORTHY, splitRequest } from "./request-split.js";

/** 5xx, 429 and no answer (0): the same request goes again, after a backoff. */
const retryable = (status: number): boolean => status === 0 || status === 429 || status >= 500;

/** One ordered lane to the receiver: the series of the origins hashed to it, one request in flight. */
export interface SenderShard {
  readonly queue: RequestQueue;
  sending: boolean;
  readonly backoff: Backoff;
}

/**
 * The sending side of one receiver: each shard's queue in order, one request in flight per shard,
 * what the receiver turns out to speak (protocol auto: 2.0 until it shows it knows only 1.0;
 * compression zstd: after VictoriaMetrics' probe), retries and the counting of every outcome.
 */
export class RemoteWriteSender {
  /** Writing 2.0 now: "2.0", or "auto" until the receiver showed it speaks only 1.0. */
  v2: boolean;
  /** Newest sample time the receiver accepted, ms. */
  highestSentMs = 0;
  /** compression zstd: null until the receiver was asked whether it takes it. */
  private zstd: boolean | null;
  private zstdAsked: Promise<boolean> | null = null;
  private stopped = false;
  private readonly m;
  private readonly refused: LimitedWarning;

  constructor(
    private readonly config: Readonly<RemoteWriteConfig>,
    private readonly client: RemoteWriteClient,
    private readonly url: string,
    private readonly log: Logger,
    registry: Registry,
  ) {
    this.v2 = config.protocol !== "1.0";
    this.zstd = config.compression === "zstd" ? null : false;
    this.m = remoteWriteMetrics(registry);
    this.refused = new LimitedWarning(log, "remote_write: receiver refused a request (dropped, not retried)");
  }

  /** No request leaves after this; the connections close. */
  stop(): void {
    this.stopped = true;
    this.client.close();
  }

  /** Sends a shard's queue in order, one request at a time, retrying what may succeed later. */
  async drain(shard: SenderShard): Promise<void> {
    shard.sending = true;
    try {
      for (let p = shard.queue.head(); p !== null && !this.stopped; p = shard.queue.head()) {
        if (this.zstd === null) this.zstd = await (this.zstdAsked ??= this.askZstd());
        // Queued in 2.0 before the receiver turned out to speak 1.0 (protocol: auto): sent as 1.0.
        const v2 = p.v2 && this.v2;
        let body = p.v2 && !v2 ? compressSync(v2ToV1(uncompressSync(p.body) as Buffer)) : p.body;
        // zstd at the last moment: queued (and on disk) every request is snappy.
        if (this.zstd && !v2) body = Buffer.from(zstdCompress(uncompressSync(body) as Buffer, 3));
        const res = await this.client.send(body, shard.backoff.attempts, v2, this.zstd && !v2);
        // Stopped meanwhile: the request stays where it is (on disk, a later start sends it again).
        if (this.stopped) return;
        this.m.requests.inc({ url: this.url, code: String(res.status) });
        if (v2 && this.config.protocol === "auto" && (res.status === 415 || res.status === 400 || (res.status >= 200 && res.status < 300 && res.written === null))) {
          // A 1.x receiver: it refused the 2.0 content type, or took the request for an empty 1.0 one.
          if (this.v2) this.log.info({ url: this.url, status: res.status }, `remote_write to ${this.url}: the receiver speaks 1.0 only (status ${res.status}); writing 1.0 from now on`);
          this.v2 = false;
          continue;
        }
        if (retryable(res.status)) {
          this.m.retried.inc({ url: this.url }, p.samples);
          await this.waitToRetry(shard, res.retryAfterMs);
          continue;
        }
        const split = res.status === 400 && SPLIT_WORTHY.test(res.detail);
        if (split) {
          // Refused whole for some of its samples: the halves go on their own, down to the series refused.
          const raw = p.v2 && !v2 ? v2ToV1(uncompressSync(p.body) as Buffer) : (uncompressSync(p.body) as Buffer);
          if (!(await this.sendSplit(shard, raw, p.samples, v2, p.stale, res.detail))) return;
        } else this.settled(res, p.samples, body.length, v2, p.stale);
        shard.backoff.reset();
        shard.queue.ack();
        if ((split || (res.status >= 200 && res.status < 300)) && p.newestMs > this.highestSentMs) this.highestSentMs = p.newestMs;
      }
    } finally {
      shard.sending = false;
    }
  }

  /**
   * Counts a request the receiver answered for good: accepted (a 2.0 receiver says how many it
   * wrote; fewer than sent were not written, counted, not retried; one that does not say, a 1.x
   * receiver given protocol "2.0", wrote nothing it could read), or refused, by status (staleness
   * markers apart: a node's end the receiver did not take), and said (rate-limited).
   */
  private settled(res: SendResult, samples: number, bytes: number, v2: boolean, stale: boolean): void {
    if (res.status >= 200 && res.status < 300) {
      const notWritten = v2 ? Math.max(0, samples - (res.written ?? 0)) : 0;
      if (v2 && res.written === null && samples > 0) this.refused.warn({ url: this.url, status: res.status, samples, detail: "no X-Prometheus-Remote-Write-Samples-Written: a 1.x receiver? use protocol auto or 1.0" });
      if (notWritten > 0) this.m.failed.inc({ url: this.url, reason: "not_written" }, notWritten);
      this.m.sent.inc({ url: this.url }, samples - notWritten);
      this.m.bytes.inc({ url: this.url }, bytes);
      return;
    }
    this.m.failed.inc({ url: this.url, reason: stale ? "stale_refused" : `status_${res.status}` }, samples);
    if (!stale) this.refused.warn({ url: this.url, status: res.status, samples, detail: res.detail });
  }

  private waitToRetry(shard: SenderShard, retryAfterMs: number | null): Promise<void> {
    const waitMs = Math.min(5 * 60_000, Math.max(shard.backoff.nextDelayMs(), retryAfterMs ?? 0));
    return new Promise((r) => setTimeout(r, waitMs).unref());
  }

  /**
   * Sends a refused request (`raw`, uncompressed) again in two halves, each retried while the
   * receiver is away and split again while refused for some of its samples; a single series still
   * refused is dropped and counted. False when stopped meanwhile (the request stays queued: a later
   * start sends it again, and the receiver takes what it already has as duplicates).
   */
  private async sendSplit(shard: SenderShard, raw: Uint8Array, samples: number, v2: boolean, stale: boolean, detail: string): Promise<boolean> {
    const halves = splitRequest(raw, v2);
    if (halves === null) {
      this.settled({ status: 400, retryAfterMs: null, written: null, detail }, samples, 0, v2, stale);
      return true;
    }
    this.m.split.inc({ url: this.url });
    for (const part of halves) {
      for (;;) {
        const zstd = this.zstd === true && !v2;
        const body = zstd ? Buffer.from(zstdCompress(part.body, 3)) : compressSync(Buffer.from(part.body));
        const res = await this.client.send(body, shard.backoff.attempts, v2, zstd);
        if (this.stopped) return false;
        this.m.requests.inc({ url: this.url, code: String(res.status) });
        if (retryable(res.status)) {
          this.m.retried.inc({ url: this.url }, part.samples);
          await this.waitToRetry(shard, res.retryAfterMs);
          if (this.stopped) return false;
          continue;
        }
        if (res.status === 400 && SPLIT_WORTHY.test(res.detail)) {
          if (!(await this.sendSplit(shard, part.body, part.samples, v2, stale, res.detail))) return false;
        } else this.settled(res, part.samples, body.length, v2, stale);
        shard.backoff.reset();
        break;
      }
    }
    return true;
  }

  /** VictoriaMetrics' zstd, when the receiver says it takes it; snappy otherwise (said once). */
  private async askZstd(): Promise<boolean> {
    const yes = await this.client.probeZstd();
    if (yes) await zstdInit();
    this.log.info({ url: this.url, zstd: yes }, yes ? `remote_write to ${this.url}: zstd` : `remote_write to ${this.url}: the receiver does not take zstd (no VictoriaMetrics remote write protocol): snappy`);
    return yes;
  }
}
