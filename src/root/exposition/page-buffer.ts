import { yieldToLoop } from "./exposition-cache.js";

/** One assembled /metrics page; `release` when it has been sent (or compressed), so its memory serves the next scrape. */
export interface Page {
  readonly body: Buffer;
  release(): void;
}

/**
 * The /metrics page assembled into one buffer kept from scrape to scrape. A fresh buffer per scrape
 * costs the kernel's page faults on every byte: at 1M series (~68 MB) Buffer.concat took 130–250 ms
 * where copying into a buffer already touched took 40–60 ms. A scrape that arrives while another
 * page is still being sent (two Prometheus servers) gets a buffer of its own, so a page in flight is
 * never overwritten. The kept buffer has a quarter of headroom and shrinks when the page does.
 */
export class PageBuffer {
  private kept = Buffer.alloc(0);
  private inFlight = false;

  assemble(parts: readonly Buffer[]): Page {
    const shared = this.claim();
    let total = 0;
    for (const p of parts) total += p.length;
    const target = this.target(shared, total);
    let o = 0;
    for (const p of parts) {
      target.set(p, o);
      o += p.length;
    }
    return this.page(target, total, shared);
  }

  /**
   * `assemble`, letting the event loop run after every `sliceBytes` copied (a 68 MB page is ~50 ms
   * of copying, past the 50 ms a root may hold ingestion up). The buffer counts as in flight from
   * the start, so a scrape arriving meanwhile gets its own.
   */
  async assembleSliced(parts: readonly Buffer[], sliceBytes = 4 * 1024 * 1024): Promise<Page> {
    // The kept buffer is claimed before the first pause, so a scrape arriving meanwhile gets its own.
    const shared = this.claim();
    // Even adding up the sizes is work at a million series (558k chunks: 32 ms), so that is sliced too.
    let total = 0;
    for (let k = 0; k < parts.length; k++) {
      total += parts[k]!.length;
      if ((k & 0xffff) === 0xffff) await yieldToLoop();
    }
    const target = this.target(shared, total);
    let o = 0;
    let since = 0;
    for (const p of parts) {
      target.set(p, o);
      o += p.length;
      since += p.length;
      if (since >= sliceBytes) {
        since = 0;
        await yieldToLoop();
      }
    }
    return this.page(target, total, shared);
  }

  /** Whether this page gets the kept buffer (none in flight), which is then in flight. */
  private claim(): boolean {
    if (this.inFlight) return false;
    this.inFlight = true;
    return true;
  }

  private target(shared: boolean, total: number): Buffer {
    if (!shared) return Buffer.allocUnsafe(total);
    if (this.kept.length < total || this.kept.length > 4 * total + 65_536) this.kept = Buffer.allocUnsafe(Math.ceil(total * 1.25));
    return this.kept;
  }

  private page(target: Buffer, total: number, shared: boolean): Page {
    let released = false;
    return {
      body: target.subarray(0, total),
      release: () => {
        if (released || !shared) return;
        released = true;
        this.inFlight = false;
      },
    };
  }
}
