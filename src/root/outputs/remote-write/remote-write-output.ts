import { compressSync } from "snappy";
import type { Registry } from "prom-client";
import { Backoff } from "../../../core/backoff.js";
import { LimitedWarning, type Logger } from "../../../core/logger.js";
import type { AppliedFrame } from "../../../series/delta-decoder.js";
import { namePhase } from "../../../series/keyframe-schedule.js";
import { METRIC_TYPE } from "./metric-type.js";
import type { HiddenReason, OriginView, OutputView, RootOutput, RootSeriesSnapshot } from "../root-output.js";
import { RemoteWriteClient, redactUrl } from "./remote-write-client.js";
import type { RemoteWriteConfig } from "./remote-write-config.js";
import { SeriesFilter } from "./series-filter.js";
import { remoteWriteMetrics } from "./remote-write-metrics.js";
import { SampleBatch, type ExternalLabels } from "./sample-batch.js";
import { WriteRequestWriter } from "./write-request.js";
import { WriteRequestV2Writer } from "./write-request-v2.js";
import { RemoteWriteSender, type SenderShard } from "./remote-write-sender.js";
import { DiskQueue, lockQueueDir } from "./disk-queue.js";
import { MemoryQueue, type QueuedRequest } from "./request-queue.js";

/** A sender's shard with the samples batching for it. */
interface Shard extends SenderShard {
  readonly batch: SampleBatch;
}

/** Refreshes and staleness markers are written in steps this far apart. */
const REFRESH_STEP_MS = 100;
/** The root's own series written in one step at most (a root of 50,000 nodes has 100,000: spread over 5 steps). */
const ROOT_SERIES_PER_STEP = 20_000;
/** Staleness markers written in one step at most (a root that loses a subtree of thousands of nodes writes their markers over seconds, not in one blocking go). */
const STALE_PER_STEP = 20_000;

/**
 * remote_write (1.0, 2.0, or 2.0 falling back to 1.0: `protocol`) to one receiver. What is written
 * per series: every value the root applies (a change beyond its bound, at its origin's sample
 * time), its current value at least every refreshMs (so `rate()` and instant queries work at the
 * receiver as for a scraped target), and a staleness marker when its node goes down; and the root's
 * own series every rootSeriesIntervalMs (see RootSeries). Samples of one node stay in one shard, so each series'
 * samples leave in time order; one request per shard is in flight. Requests wait in a queue bounded
 * by queue.maxBytes (the oldest dropped and counted past it); 5xx, 429 and no answer are retried
 * with capped backoff (Retry-After honoured), other 4xx are dropped and counted by status.
 * Cost: per applied sample, a few array writes; per sample sent, its labels written once into the
 * request (~70 B before snappy).
 */
export class RemoteWriteOutput implements RootOutput {
  readonly name: string;
  private readonly url: string;
  private readonly sender: RemoteWriteSender;
  private readonly shards: Shard[];
  private readonly writer = new WriteRequestWriter();
  private readonly writerV2 = new WriteRequestV2Writer();
  private readonly external: ExternalLabels;
  private readonly filter: SeriesFilter;
  /** The origins that are up, by refresh slot: a step refreshes one slot's origins without looking at the others. */
  private readonly refreshSlots: Set<OriginView>[];
  /** Nodes gone down whose staleness markers are still to be written, and at what time (see STALE_PER_STEP). */
  private readonly pendingStale = new Map<OriginView, number>();
  /** Newest sample time written per origin: an older one (a node's clock stepped back) is dropped, not sent out of order. */
  private readonly newestOf = new WeakMap<OriginView, number>();
  /** Samples outside [now - maxAgeMs, now + maxFutureMs]: a line a minute at most (a node's clock stays off). */
  private readonly outOfWindow: LimitedWarning;
  private readonly releaseDir: () => void;
  private readonly m;
  private view: OutputView | null = null;
  private timers: NodeJS.Timeout[] = [];
  private refreshTick = 0;
  private highestQueuedMs = 0;
  private readonly gauges;
  /** The root's own series collected and not yet all written, from `next` on, at `timeMs`. */
  private rootPending: { snapshot: RootSeriesSnapshot; next: number; timeMs: number } | null = null;
  private collectingRoot = false;

  constructor(
    private readonly config: Readonly<RemoteWriteConfig>,
    private readonly log: Logger,
    registry: Registry,
    private readonly clock: () => number = Date.now,
  ) {
    this.url = redactUrl(config.url);
    this.name = `remote_write ${this.url}`;
    this.sender = new RemoteWriteSender(config, new RemoteWriteClient(config), this.url, log, registry);
    this.external = Object.entries(config.externalLabels).sort(([a], [b]) => (a < b ? -1 : 1));
    this.filter = new SeriesFilter(config.match, config.drop);
    this.outOfWindow = new LimitedWarning(log, "remote_write: a node's samples are outside the receiver's time window (its clock is off, or they are over maxAgeMs late): not written, counted", 60_000);
    this.refreshSlots = Array.from({ length: Math.max(1, Math.floor(config.refreshMs / REFRESH_STEP_MS)) }, () => new Set());
    const dir = config.queue.dir;
    // Segments of about a sixteenth of the bound: dropping the oldest one frees a little, not half.
    const segmentBytes = Math.max(64 * 1024, Math.min(8 * 2 ** 20, Math.floor(config.queue.maxBytes / 16)));
    // One root per directory: two would delete each other's segments under their feet.
    this.releaseDir = dir === undefined ? () => {} : lockQueueDir(dir);
    const damaged = new LimitedWarning(log, "remote_write: queue segment unreadable (removed, truncated or damaged): its samples are lost, counted", 60_000);
    const lost = (samples: number, why: string): void => {
      this.m.failed.inc({ url: this.url, reason: "queue_damaged" }, samples);
      damaged.warn({ url: this.url, samples, why });
    };
    this.shards = Array.from({ length: config.queue.concurrency }, (_, k) => ({
      batch: new SampleBatch(),
      queue: dir === undefined ? new MemoryQueue() : new DiskQueue(dir, k, segmentBytes, lost),
      sending: false,
      backoff: new Backoff(config.queue.minBackoffMs, config.queue.maxBackoffMs),
    }));
    this.m = remoteWriteMetrics(registry);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the gauges read the output when scraped
    const self = this;
    this.gauges = {
      url: this.url,
      get pendingSamples() {
        return self.shards.reduce((n, s) => n + s.batch.count + s.queue.samples, 0);
      },
      get queueBytes() {
        return self.queueBytes;
      },
      shards: this.shards.length,
      get highestSentMs() {
        return self.sender.highestSentMs;
      },
      get highestQueuedMs() {
        return self.highestQueuedMs;
      },
    };
  }

  start(view: OutputView): void {
    this.view = view;
    for (const origin of view.origins()) if (origin.up) this.slotSet(origin).add(origin);
    this.m.outputs.add(this.gauges);
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(Math.min(100, this.config.queue.batchDeadlineMs), () => this.sealDue());
    every(REFRESH_STEP_MS, () => this.step());
    if (this.config.rootSeriesIntervalMs > 0 && view.rootSeries !== undefined) every(this.config.rootSeriesIntervalMs, () => void this.collectRootSeries());
    if (this.config.metadataIntervalMs > 0) every(this.config.metadataIntervalMs, () => this.sendMetadata());
    // What an earlier process left on disk goes first.
    for (const s of this.shards) if (s.queue.length > 0) void this.sender.drain(s);
    this.log.info({ url: this.url, shards: this.shards.length, refreshMs: this.config.refreshMs }, `remote_write to ${this.url}`);
  }

  /**
   * Seals what is batched and gives the queue up to `drainMs` to empty (in memory: what is left is
   * counted as dropped). With a queue on disk nothing is waited for: it is there for the next start,
   * which may begin at once (a reload): so this returns without awaiting anything.
   */
  async stop(drainMs = this.config.queue.dir !== undefined ? 0 : 2000): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.writeStale(Infinity);
    for (const s of this.shards) this.seal(s, false);
    const until = this.clock() + drainMs;
    while (drainMs > 0 && this.clock() < until && this.shards.some((s) => s.queue.length > 0)) await new Promise((r) => setTimeout(r, 20));
    this.sender.stop();
    for (const s of this.shards) {
      // On disk it waits for the next start; in memory it is lost, and counted.
      if (s.queue instanceof MemoryQueue && s.queue.samples > 0) this.m.failed.inc({ url: this.url, reason: "stopped" }, s.queue.samples);
      s.queue.close();
    }
    this.releaseDir();
    this.m.outputs.delete(this.gauges);
  }

  applied(origin: OriginView, applied: AppliedFrame, timeMs: number): void {
    const now = this.clock();
    if (!this.fresh(origin, timeMs, applied.changedCount, now)) return;
    const shard = this.shardOf(origin);
    const d = origin.decoded;
    for (let k = 0; k < applied.changedCount; k++) {
      const id = applied.changed[k]!;
      const def = d.def(id);
      if (def === undefined || !this.filter.wanted(def)) continue;
      shard.batch.add(def, origin, d.value(id), timeMs, now);
      if (shard.batch.count >= this.config.queue.maxSamplesPerSend) this.seal(shard, false);
    }
  }

  shown(origin: OriginView): void {
    this.pendingStale.delete(origin);
    this.slotSet(origin).add(origin);
    this.writeAll(origin, origin.lastSampleMs, false);
  }

  hidden(origin: OriginView, why: HiddenReason): void {
    this.slotSet(origin).delete(origin);
    // A node that moved to another parent keeps its series there (at another root, maybe writing to
    // the same receiver): no end is marked. A node gone silent gets Prometheus' staleness markers,
    // after what is batched for it (same shard, so in order), within the next steps.
    if (why !== "down") return;
    this.seal(this.shardOf(origin), false);
    this.pendingStale.set(origin, Math.max(origin.lastSampleMs, this.newestOf.get(origin) ?? 0) + 1);
  }

  /** One step: the staleness markers due (up to STALE_PER_STEP samples), the root's own series (up to ROOT_SERIES_PER_STEP), then one slot's refresh. */
  private step(): void {
    this.writeStale(STALE_PER_STEP);
    this.writeRootSeries(ROOT_SERIES_PER_STEP);
    const set = this.refreshSlots[this.refreshTick++ % this.refreshSlots.length]!;
    for (const origin of set) this.writeAll(origin, origin.lastSampleMs, false);
  }

  /** Takes the root's own series now; they are written over the next steps (a collection still being written is replaced). */
  private async collectRootSeries(): Promise<void> {
    if (this.collectingRoot || this.view?.rootSeries === undefined) return;
    this.collectingRoot = true;
    try {
      const snapshot = await this.view.rootSeries();
      this.rootPending = { snapshot, next: 0, timeMs: this.clock() };
    } catch (err) {
      this.log.warn({ url: this.url, err: (err as Error).message }, "remote_write: the root's own series could not be read this time");
    } finally {
      this.collectingRoot = false;
    }
  }

  /** Writes up to `budget` of the root's own series collected, into the first shard (so each series' samples stay in order). */
  private writeRootSeries(budget: number): void {
    const p = this.rootPending;
    if (p === null) return;
    const shard = this.shards[0]!;
    const now = this.clock();
    const { defs, values } = p.snapshot;
    const end = Math.min(defs.length, p.next + budget);
    for (let k = p.next; k < end; k++) {
      if (!this.filter.wanted(defs[k]!)) continue;
      shard.batch.add(defs[k]!, null, values[k]!, p.timeMs, now);
      if (shard.batch.count >= this.config.queue.maxSamplesPerSend) this.seal(shard, false);
    }
    p.next = end;
    if (end === defs.length) this.rootPending = null;
    if (p.timeMs > this.highestQueuedMs) this.highestQueuedMs = p.timeMs;
  }

  /** Writes pending staleness markers, about `budget` samples' worth; a node that came back gets none. */
  private writeStale(budget: number): void {
    for (const [origin, at] of this.pendingStale) {
      if (budget <= 0) return;
      this.pendingStale.delete(origin);
      if (origin.up) continue;
      budget -= origin.seriesCount;
      this.writeAll(origin, at, true);
      this.seal(this.shardOf(origin), true);
    }
  }

  /**
   * False (and counted) when the origin's clock went back past what was written for it, or the time
   * is outside the receiver's window (maxAgeMs, maxFutureMs: the node's clock is far off, or the
   * frame is over an hour late).
   */
  private fresh(origin: OriginView, timeMs: number, samples: number, now: number): boolean {
    if (!this.inWindow(origin, timeMs, samples, now)) return false;
    const newest = this.newestOf.get(origin) ?? 0;
    if (timeMs < newest) {
      this.m.failed.inc({ url: this.url, reason: "out_of_order" }, samples);
      return false;
    }
    if (timeMs > newest) this.newestOf.set(origin, timeMs);
    if (timeMs > this.highestQueuedMs) this.highestQueuedMs = timeMs;
    return true;
  }

  /** False (and counted, the node named once a minute) when `timeMs` is outside [now - maxAgeMs, now + maxFutureMs]. */
  private inWindow(origin: OriginView, timeMs: number, samples: number, now: number): boolean {
    const { maxAgeMs, maxFutureMs } = this.config;
    const reason = maxFutureMs > 0 && timeMs > now + maxFutureMs ? "future" : maxAgeMs > 0 && timeMs < now - maxAgeMs ? "too_old" : null;
    if (reason === null) return true;
    this.m.failed.inc({ url: this.url, reason }, samples);
    this.outOfWindow.warn({ url: this.url, node: origin.name, offsetS: Math.round((timeMs - now) / 1000), samples, maxAgeMs, maxFutureMs });
    return false;
  }

  /** Every series of an origin at one time: when it comes up, its refresh, and its staleness markers. */
  private writeAll(origin: OriginView, timeMs: number, stale: boolean): void {
    const d = origin.decoded;
    const now = this.clock();
    if (!stale && !this.fresh(origin, timeMs, origin.seriesCount, now)) return;
    // A node whose samples were all outside the window gets no markers there either.
    if (stale && !this.inWindow(origin, timeMs, origin.seriesCount, now)) return;
    if (stale) this.newestOf.set(origin, timeMs);
    const shard = this.shardOf(origin);
    for (let id = 0; id < d.capacity; id++) {
      const def = d.def(id);
      if (def === undefined || !this.filter.wanted(def)) continue;
      shard.batch.add(def, origin, stale ? NaN : d.value(id), timeMs, now, stale);
      if (shard.batch.count >= this.config.queue.maxSamplesPerSend) this.seal(shard, stale);
    }
  }

  /** The refresh slot of an origin (its name's phase of refreshMs). */
  private slotSet(origin: OriginView): Set<OriginView> {
    return this.refreshSlots[slotOf(origin.name, this.refreshSlots.length)]!;
  }

  private shardOf(origin: OriginView): Shard {
    // The hash's low bits (its high bits pick the refresh slot and the sampling phase: nodes that
    // sample, or refresh, together still spread over the shards).
    return this.shards[Math.floor(namePhase(origin.name) * 2 ** 32) % this.shards.length]!;
  }

  private sealDue(): void {
    const now = this.clock();
    for (const s of this.shards) if (s.batch.count > 0 && now - s.batch.firstAtMs >= this.config.queue.batchDeadlineMs) this.seal(s, false);
  }

  /** Closes a shard's batch into a compressed request on its queue. */
  private seal(shard: Shard, stale: boolean): void {
    if (shard.batch.count === 0) return;
    const samples = shard.batch.count;
    const newestMs = shard.batch.newestMs;
    const v2 = this.sender.v2;
    const body = compressSync(shard.batch.encode(v2 ? this.writerV2 : this.writer, this.external));
    this.enqueue(shard, { body, samples, newestMs, stale, v2 });
  }

  private get queueBytes(): number {
    return this.shards.reduce((n, s) => n + s.queue.bytes, 0);
  }

  private enqueue(shard: Shard, p: QueuedRequest): void {
    shard.queue.push(p);
    // Past the bound the oldest requests go, from the fullest shard (never one in flight).
    while (this.queueBytes > this.config.queue.maxBytes) {
      let dropped = 0;
      for (const victim of [...this.shards].sort((a, b) => b.queue.bytes - a.queue.bytes)) {
        dropped = victim.queue.dropOldest(victim.sending);
        if (dropped > 0) break;
      }
      if (dropped === 0) break;
      this.m.failed.inc({ url: this.url, reason: "queue_full" }, dropped);
    }
    if (!shard.sending) void this.sender.drain(shard);
  }

  /** Type and help of every family the root holds, in one request (Prometheus sends them apart from samples too). */
  private sendMetadata(): void {
    // 2.0 carries type and help with every series.
    if (this.view === null || this.sender.v2) return;
    this.writer.reset();
    let n = 0;
    for (const f of this.view.families()) {
      this.writer.metadata(f.name, METRIC_TYPE[f.type] ?? 0, f.help);
      n++;
    }
    if (n === 0) return;
    this.enqueue(this.shards[0]!, { body: compressSync(this.writer.view()), samples: 0, newestMs: 0, stale: false, v2: false });
  }
}

/** A name's slot of `n`: its phase (the hash the keyframe schedule and the sampler use). */
const slotOf = (name: string, n: number): number => Math.min(n - 1, Math.floor(namePhase(name) * n));
