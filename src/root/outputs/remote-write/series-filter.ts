import type { SeriesDef } from "../../../series/series-def.js";
import { anchored, type SeriesMatcherConfig } from "./remote-write-config.js";

/** A match/drop rule with its regular expressions compiled once. */
interface CompiledMatcher {
  readonly name: RegExp | null;
  readonly labels: readonly (readonly [string, RegExp])[];
}

/**
 * Which series a receiver gets: those matching one of `match` (all when there is none) and none of
 * `drop`. Decided once per series definition (a keyframe brings new ones), not per sample.
 */
export class SeriesFilter {
  private readonly match: CompiledMatcher[];
  private readonly drop: CompiledMatcher[];
  private readonly byDef = new WeakMap<SeriesDef, boolean>();

  constructor(match: readonly SeriesMatcherConfig[], drop: readonly SeriesMatcherConfig[]) {
    this.match = match.map(compile);
    this.drop = drop.map(compile);
  }

  wanted(def: SeriesDef): boolean {
    if (this.match.length === 0 && this.drop.length === 0) return true;
    let w = this.byDef.get(def);
    if (w === undefined) {
      w = (this.match.length === 0 || this.match.some((m) => matches(m, def))) && !this.drop.some((m) => matches(m, def));
      this.byDef.set(def, w);
    }
    return w;
  }
}

function compile(m: SeriesMatcherConfig): CompiledMatcher {
  return { name: m.name === undefined ? null : anchored(m.name), labels: Object.entries(m.labels).map(([k, re]) => [k, anchored(re)] as const) };
}

function matches(m: CompiledMatcher, def: SeriesDef): boolean {
  if (m.name !== null && !m.name.test(def.name)) return false;
  for (const [k, re] of m.labels) if (!re.test(def.labels.find(([n]) => n === k)?.[1] ?? "")) return false;
  return true;
}
