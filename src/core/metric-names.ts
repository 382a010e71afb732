import type { Registry } from "prom-client";
import { Counter, Gauge } from "prom-client";

/**
 * Metrics are registered into an injected registry, never the global one, so several daemons in one
 * process (tests, the demo, the bench) keep their figures apart. Names follow
 * `banyan_<component>_<name>_<unit>`, `_total` on counters.
 */
export function counter<L extends string = never>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter({ name, help, labelNames: [...labelNames], registers: [registry] });
}

export function gauge<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[] = [],
  collect?: (this: Gauge<L>) => void,
): Gauge<L> {
  const existing = registry.getSingleMetric(name) as (Gauge<L> & { collect?: unknown }) | undefined;
  if (existing !== undefined) {
    // A reloaded part registers again: its collect replaces the old one's, which would read a stopped object.
    if (collect) existing.collect = collect;
    return existing;
  }
  return new Gauge({ name, help, labelNames: [...labelNames], registers: [registry], ...(collect ? { collect } : {}) });
}

/** A counter whose value is read when scraped (collect sets it from a tally kept as a plain number). */
export function tallied<L extends string = never>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  collect: (this: Counter<L>) => void,
): Counter<L> {
  const existing = registry.getSingleMetric(name) as (Counter<L> & { collect?: unknown }) | undefined;
  if (existing !== undefined) {
    existing.collect = collect;
    return existing;
  }
  return new Counter({ name, help, labelNames: [...labelNames], registers: [registry], collect });
}
