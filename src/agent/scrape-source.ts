import type { Logger } from "../core/logger.js";
import { forwardedType } from "../series/series-def.js";
import { parseExposition, type ParsedSample } from "../series/text-parser.js";
import { SeriesWriter } from "./collectors/series-writer.js";
import { gpuReadingsOf, type GpuReading, type GpuReadings } from "./gpu-readings.js";
import type { SampleTarget, Source } from "../node/source.js";

export interface ScrapeTarget {
  readonly url: string;
  /** `job` label of the scraped series (the exposition's own job label becomes exported_job). */
  readonly job: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

const ACCEPT = "application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/**
 * Scrapes a local Prometheus endpoint (dcgm-exporter :9400, node_exporter :9100, an application)
 * on its own timer and hands the sampler the latest good scrape, so a slow exporter never delays a
 * tick. Its series go up under the target's job, by the same delta rules. A failed scrape (error,
 * timeout, non-200) drops the target's series — what Prometheus' staleness would do — and sets
 * banyan_scrape_up{job,url} to 0; malformed lines are counted and skipped, the good ones kept.
 */
export class ScrapeSource implements Source, GpuReadings {
  readonly name: string;
  private latest: ParsedSample[] | null = null;
  /** dcgm-exporter's utilisation and memory by GPU, when the target is one (for the jobs' reports). */
  private gpus = new Map<string, GpuReading>();
  private up = 0;
  private badLines = 0;
  private timer: NodeJS.Timeout | null = null;
  private writer: SeriesWriter | null = null;
  private lastLogMs = 0;
  private closed = false;

  constructor(
    private readonly t: ScrapeTarget,
    private readonly log: Logger,
  ) {
    this.name = `scrape:${t.job}`;
  }

  /** One scrape now (the loop calls it; tests too). */
  async scrapeOnce(): Promise<void> {
    try {
      const res = await fetch(this.t.url, { headers: { accept: ACCEPT }, signal: AbortSignal.timeout(this.t.timeoutMs) });
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
      const parsed = parseExposition(await res.text());
      this.latest = parsed.samples;
      this.gpus = gpuReadingsOf(parsed.samples);
      this.up = 1;
      this.badLines += parsed.errors.length;
      if (parsed.errors.length > 0) this.warn({ errors: parsed.errors.slice(0, 3), count: parsed.errors.length }, "malformed lines skipped");
    } catch (err) {
      this.latest = null;
      this.gpus.clear();
      this.up = 0;
      this.warn({ err: (err as Error).message }, "scrape failed");
    }
  }

  gpuReading(index: string): GpuReading | undefined {
    return this.gpus.get(index);
  }

  collect(target: SampleTarget): void {
    if (this.timer === null && !this.closed) this.loop();
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    const own = { job: this.t.job, url: this.t.url };
    w.gauge("banyan_scrape_up", own, this.up, "1 when the last scrape of a local exporter succeeded.");
    w.counter("banyan_scrape_malformed_lines_total", own, this.badLines, "Lines of a local exporter's page that could not be parsed.");
    for (const s of this.latest ?? []) {
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.labels)) labels[k === "job" || k === "instance" ? `exported_${k}` : k] = v;
      labels["job"] = this.t.job;
      w.put(s.name, labels, s.value, forwardedType(s.name, s.type), s.help);
    }
    w.end();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private loop(): void {
    const run = async (): Promise<void> => {
      await this.scrapeOnce();
      if (!this.closed) {
        this.timer = setTimeout(() => void run(), this.t.intervalMs);
        this.timer.unref();
      }
    };
    this.timer = setTimeout(() => void run(), 0);
    this.timer.unref();
  }

  private warn(obj: object, msg: string): void {
    const now = Date.now();
    if (now - this.lastLogMs < 60_000) return; // one line a minute per target, not one per scrape
    this.lastLogMs = now;
    this.log.warn({ job: this.t.job, url: this.t.url, ...obj }, msg);
  }
}
