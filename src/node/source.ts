import type { SeriesDef } from "../series/series-def.js";

/** Where a source writes: define a series once, then set its value each tick by id. */
export interface SampleTarget {
  define(def: SeriesDef): number;
  set(id: number, value: number): void;
  remove(id: number): void;
}

/**
 * A source of metrics on the node. `collect` runs once per tick; it may be async (file reads) but
 * must not block the event loop for long, and must never log per sample.
 */
export interface Source {
  readonly name: string;
  collect(target: SampleTarget, nowMs: number): void | Promise<void>;
  close?(): void;
}
