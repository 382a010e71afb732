import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Registry } from "prom-client";
import { z } from "zod";
import { Backoff } from "../../core/backoff.js";
import { BanyanError, Code } from "../../core/errors.js";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import { counter, gauge } from "../../core/metric-names.js";
import { EVENT_TYPES, labelMatchSchema, labelMatcher, type EventLog, type RootEvent } from "./event-log.js";

/** `events.webhooks[]`: a JSON POST of events, signed, with retries. */
export const webhookSchema = z.strictObject({
  /** Where events are POSTed (JSON: {events: [...]}). */
  url: z.string().url(),
  /** File holding the HMAC-SHA256 key of the `X-Banyan-Signature: sha256=<hex>` header (none: unsigned). */
  secretFile: z.string().min(1).optional(),
  /** Only these event types (default: all). */
  types: z.array(z.enum(EVENT_TYPES)).optional(),
  /** Only events whose labels match (anchored regexps). */
  match: labelMatchSchema,
  /** Events waiting at most; past it the oldest are dropped and counted as dead letters. */
  maxQueue: z.number().int().positive().max(1_000_000).default(10_000),
  /** Events in one POST at most. */
  maxBatch: z.number().int().positive().max(10_000).default(500),
  /** A POST not answered this long failed (retried with backoff). */
  timeoutMs: z.number().int().positive().default(5000),
});
export type WebhookConfig = z.infer<typeof webhookSchema>;

/**
 * Events to a webhook: JSON `{"root", "events": [...]}` POSTs of up to `maxBatch`, gathered for
 * 100 ms, signed with HMAC-SHA256 of the body when a secret is set (`X-Banyan-Signature:
 * sha256=<hex>`, as GitHub signs its hooks). A failed POST (network, 5xx, 429) is retried with
 * capped backoff (0.5–30 s), in order, for as long as it takes; a 4xx other than 429 drops the batch
 * as dead letters (the receiver refuses it). The queue is bounded: past `maxQueue`, the oldest events
 * are dead letters. Counted: `banyan_webhook_events_sent_total`, `banyan_webhook_dead_letters_total`.
 */
export class WebhookOutput {
  private readonly queue: RootEvent[] = [];
  private sending = false;
  private timer: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly backoff = new Backoff(500, 30_000);
  private readonly secret: Buffer | null;
  private readonly takes: (labels: Readonly<Record<string, string>>) => boolean;
  private readonly failed: LimitedWarning;
  private readonly m;
  private stopped = false;

  constructor(
    private readonly cfg: WebhookConfig,
    private readonly root: string,
    log: Logger,
    registry: Registry,
  ) {
    this.secret = cfg.secretFile === undefined ? null : readSecret(cfg.secretFile);
    this.takes = labelMatcher(cfg.match);
    this.failed = new LimitedWarning(log, "posting events to a webhook failed (retried with backoff)", 60_000);
    this.m = {
      sent: counter(registry, "banyan_webhook_events_sent_total", "Events a webhook took.", ["url"] as const),
      dead: counter(registry, "banyan_webhook_dead_letters_total", "Events never delivered: the queue overflowed, or the receiver refused them (4xx).", ["url"] as const),
      errors: counter(registry, "banyan_webhook_errors_total", "POSTs to a webhook that failed (each retry counts).", ["url"] as const),
      // Set as the queue changes (several webhooks share the metric: a collect callback would see only the first).
      queued: gauge(registry, "banyan_webhook_queued_events", "Events waiting for a webhook.", ["url"] as const),
    };
  }

  start(events: EventLog): void {
    this.unsubscribe = events.subscribe((e) => this.offer(e));
  }

  stop(): void {
    this.stopped = true;
    this.m.queued.remove({ url: this.cfg.url });
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
  }

  private offer(e: RootEvent): void {
    if (this.cfg.types !== undefined && !this.cfg.types.includes(e.type)) return;
    if (!this.takes(e.labels)) return;
    this.queue.push(e);
    if (this.queue.length > this.cfg.maxQueue) {
      const over = this.queue.length - this.cfg.maxQueue;
      this.queue.splice(0, over);
      this.m.dead.inc({ url: this.cfg.url }, over);
    }
    this.m.queued.set({ url: this.cfg.url }, this.queue.length);
    this.schedule(100);
  }

  private schedule(ms: number): void {
    if (this.sending || this.timer !== null || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, ms);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    if (this.queue.length === 0 || this.stopped) return;
    this.sending = true;
    const batch = this.queue.slice(0, this.cfg.maxBatch);
    const body = JSON.stringify({ root: this.root, events: batch });
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.secret !== null) headers["x-banyan-signature"] = `sha256=${createHmac("sha256", this.secret).update(body).digest("hex")}`;
    let retry = false;
    try {
      const res = await fetch(this.cfg.url, { method: "POST", headers, body, signal: AbortSignal.timeout(this.cfg.timeoutMs) });
      await res.arrayBuffer();
      if (res.ok) {
        this.m.sent.inc({ url: this.cfg.url }, batch.length);
        this.backoff.reset();
      } else if (res.status === 429 || res.status >= 500) {
        retry = true;
        throw new Error(`HTTP ${res.status}`);
      } else {
        this.m.dead.inc({ url: this.cfg.url }, batch.length);
        this.failed.warn({ url: this.cfg.url, status: res.status, dropped: batch.length });
      }
    } catch (err) {
      retry = true;
      this.m.errors.inc({ url: this.cfg.url });
      this.failed.warn({ url: this.cfg.url, err: (err as Error).message, queued: this.queue.length });
    }
    this.sending = false;
    if (retry) {
      this.schedule(this.backoff.nextDelayMs());
      return;
    }
    // What was sent leaves the head (the queue may have dropped its own head meanwhile).
    const sent = this.queue.indexOf(batch[batch.length - 1]!);
    this.queue.splice(0, sent + 1);
    this.m.queued.set({ url: this.cfg.url }, this.queue.length);
    if (this.queue.length > 0) this.schedule(0);
  }
}

function readSecret(path: string): Buffer {
  try {
    const s = readFileSync(path, "utf8").trim();
    if (s.length === 0) throw new Error("empty");
    return Buffer.from(s);
  } catch (err) {
    throw new BanyanError(Code.InvalidConfig, `events.webhooks[].secretFile: ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: expected a file holding the signing key`);
  }
}
