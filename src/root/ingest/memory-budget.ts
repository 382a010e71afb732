import { getHeapStatistics } from "node:v8";

/**
 * How much memory a root may hold before it refuses new state: V8's heap plus the memory its
 * objects hold outside it (buffers), against a budget (default 80 % of the heap limit, the point
 * where V8 aborts the process). Sampled by the store's sweep (a few times a second), never per
 * frame. Over it, the store takes no new origin and lets no origin grow; what is there keeps
 * flowing, and the refusals are counted (`banyan_root_frames_dropped_total{reason="memory_budget"}`).
 * Before, 16 MB of lz4 on the wire grew a root until V8 killed it.
 */
export class MemoryBudget {
  over = false;
  used = 0;
  private limit: number;

  constructor(
    bytes: number | null | undefined,
    private readonly measure: () => number = () => {
      const h = getHeapStatistics();
      return h.used_heap_size + h.external_memory;
    },
  ) {
    this.limit = MemoryBudget.resolve(bytes);
  }

  static resolve(bytes: number | null | undefined): number {
    return bytes ?? Math.floor(0.8 * getHeapStatistics().heap_size_limit);
  }

  get budget(): number {
    return this.limit;
  }

  setBudget(bytes: number | null): void {
    this.limit = MemoryBudget.resolve(bytes);
    this.sample();
  }

  sample(): void {
    this.used = this.measure();
    this.over = this.used > this.limit;
  }
}
