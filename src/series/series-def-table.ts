import type { LabelPairs, SeriesDef, SeriesType } from "./series-def.js";

/**
 * One SeriesDef object for every origin that defines the same series: same name, type, family,
 * help and labels. A cluster of like nodes defines the same few thousand series on every node, and
 * a root held a definition, its labels array (with V8's room to grow: 152 bytes for two labels) and
 * an array per label pair for each of its series — ~370 of the ~880 bytes of heap a series cost.
 * Definitions are immutable, so sharing them changes nothing for their readers.
 *
 * Bounded against a peer that defines only new series: past `maxEntries` definitions or `maxChars`
 * characters of keys the table starts afresh. The definitions it handed out stay with their origins
 * (a series defined after that is shared with those defined after it); the table itself never holds
 * more than its bounds.
 *
 * Cost: one key string per definition applied (name and labels joined) and a Map lookup, at
 * keyframes and new series, not per sample.
 */
export class SeriesDefTable {
  private table = new Map<string, SeriesDef>();
  private chars = 0;
  /** Definitions found already there (shared), for tests. */
  shared = 0;
  /** Times the table started afresh at its bounds. */
  resets = 0;

  constructor(
    readonly maxEntries = 65_536,
    readonly maxChars = 16 * 2 ** 20,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /**
   * The definition with these fields; `labels` holds `n` pairs flat (name, value, …), already
   * checked (names valid, sorted and unique). The array is the caller's scratch: it is not kept.
   */
  get(name: string, type: SeriesType, family: string, help: string, labels: readonly string[], n: number): SeriesDef {
    // The key is the series' identity, name and labels: names are metric and label names (no NUL),
    // values may hold anything, so they carry their length (no two label sets spell the same key).
    // Type, family and help are compared on the definition found: a key with them in it cost a
    // keyframe 0.2-0.3 µs more per series (long help texts hashed).
    let key = name;
    for (let j = 0; j < 2 * n; j += 2) key += `\0${labels[j]!}\0${labels[j + 1]!.length}\0${labels[j + 1]!}`;
    const known = this.table.get(key);
    if (known !== undefined && known.type === type && known.family === family && known.help === help) {
      this.shared++;
      return known;
    }
    const pairs = new Array<readonly [string, string]>(n);
    for (let j = 0; j < n; j++) pairs[j] = [labels[2 * j]!, labels[2 * j + 1]!];
    const def: SeriesDef = { name, labels: pairs as LabelPairs, type, family, help };
    // The same series with another type, family or help takes the key over (both stay right: each
    // origin keeps the definition it was given).
    if (known === undefined && (this.table.size >= this.maxEntries || this.chars + key.length > this.maxChars)) {
      this.table = new Map();
      this.chars = 0;
      this.resets++;
    }
    this.table.set(key, def);
    if (known === undefined) this.chars += key.length;
    return def;
  }
}

/** The process's table: every decoder of a root shares it (origins' definitions meet there). */
export const SHARED_SERIES_DEFS = new SeriesDefTable();
