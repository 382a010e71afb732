import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { PageParts } from "./exposition-cache.js";
import type { ExpositionFormat } from "./exposition-text.js";
import { PageBuffer, type Page } from "./page-buffer.js";

const gzipAsync = promisify(gzip);

/** A scrape's hold on the page: its bytes, its gzip (made once, shared), and `release` when sent. */
export interface PageHold {
  readonly body: Buffer;
  gzip(level: number): Promise<Buffer>;
  release(): void;
}

interface Entry {
  readonly format: ExpositionFormat;
  readonly builtAtMs: number;
  refs: number;
  readonly page: Promise<Page>;
  zipped: Promise<Buffer> | null;
  readonly done: Promise<void>;
  finish(): void;
}

/**
 * One /metrics page in memory at a time. A scrape that overlaps one in flight for the same format,
 * assembled at most `maxAgeMs` ago, gets the same page and the same gzip of it instead of a copy of
 * its own: two Prometheus servers scraping a root of 3M series hold one ~200 MB page, and compress
 * it once. A scrape that cannot share (the other format, or an older page still being sent) waits
 * until that page is sent, then reuses its memory.
 */
export class SharedPage {
  private readonly pages = new PageBuffer();
  private current: Entry | null = null;

  constructor(
    private readonly maxAgeMs = 1000,
    /** A page still being sent after this long (a client that does not read) is not waited for: the scrape gets a page of its own. */
    private readonly maxWaitMs = 5000,
  ) {}

  async acquire(format: ExpositionFormat, build: () => Promise<PageParts>, nowMs = Date.now()): Promise<PageHold> {
    for (;;) {
      const c = this.current;
      if (c === null) break;
      if (c.format === format && nowMs - c.builtAtMs <= this.maxAgeMs) {
        c.refs++;
        return this.hold(c, await c.page);
      }
      let timer: NodeJS.Timeout | undefined;
      const gaveUp = await Promise.race([c.done.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.maxWaitMs)))]);
      clearTimeout(timer);
      if (gaveUp && this.current === c) return this.hold(null, await this.assemble(build));
      nowMs = Date.now();
    }
    let finish = (): void => undefined;
    const done = new Promise<void>((resolve) => (finish = resolve));
    const page = this.assemble(build);
    const entry: Entry = { format, builtAtMs: nowMs, refs: 1, page, zipped: null, done, finish };
    this.current = entry;
    try {
      return this.hold(entry, await page);
    } catch (err) {
      this.current = null;
      finish();
      throw err;
    }
  }

  /** Builds a page and copies its parts into one buffer; the parts are closed once copied (or on a failure). */
  private async assemble(build: () => Promise<PageParts>): Promise<Page> {
    const { parts, done } = await build();
    try {
      return await this.pages.assembleSliced(parts);
    } finally {
      done();
    }
  }

  /** A hold on a shared entry, or (`e` null) on a page of its own. */
  private hold(e: Entry | null, page: Page): PageHold {
    let released = false;
    let zipped: Promise<Buffer> | null = null;
    return {
      body: page.body,
      gzip: (level) => (e === null ? (zipped ??= gzipAsync(page.body, { level })) : (e.zipped ??= gzipAsync(page.body, { level }))),
      release: () => {
        if (released) return;
        released = true;
        if (e === null) return page.release();
        if (--e.refs > 0) return;
        page.release();
        if (this.current === e) this.current = null;
        e.finish();
      },
    };
  }
}
