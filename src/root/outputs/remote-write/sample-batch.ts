import { grownTo } from "../../../core/typed-arrays.js";
import type { SeriesDef } from "../../../series/series-def.js";
import type { OriginIdentity } from "../../exposition/origin-identity.js";
import type { RequestWriter } from "./write-request.js";
import { METRIC_TYPE } from "./metric-type.js";

/**
 * Samples waiting for their request, as parallel arrays reused from one request to the next (no
 * object per sample): the series' definition and origin by reference (a keyframe may renumber the
 * origin's ids before the request leaves; the definition it pointed at stays what it was), the value
 * and the origin's sample time.
 */
export class SampleBatch {
  private defs: SeriesDef[] = [];
  private origins: (OriginIdentity | null)[] = [];
  private values = new Float64Array(256);
  private times = new Float64Array(256);
  /** 1: a staleness marker (its NaN is written bit for bit, not as whatever NaN the value holds). */
  private stale = new Uint8Array(256);
  count = 0;
  private readonly names: string[] = [];
  private readonly vals: string[] = [];
  /** When the oldest sample in the batch was added (the batch leaves batchDeadlineMs after). */
  firstAtMs = 0;
  /** The newest sample time in the batch. */
  newestMs = 0;

  /** `origin` null: a series of the root itself, its labels as they are. */
  add(def: SeriesDef, origin: OriginIdentity | null, value: number, timeMs: number, nowMs: number, stale = false): void {
    const k = this.count;
    if (k === 0) {
      this.firstAtMs = nowMs;
      this.newestMs = timeMs;
    } else if (timeMs > this.newestMs) this.newestMs = timeMs;
    if (k === this.values.length) this.grow();
    this.defs[k] = def;
    this.origins[k] = origin;
    this.values[k] = value;
    this.times[k] = timeMs;
    this.stale[k] = stale ? 1 : 0;
    this.count = k + 1;
  }

  /** The batch as a WriteRequest (the writer's buffer, valid until its next reset); empties the batch. */
  encode(w: RequestWriter, external: ExternalLabels): Buffer {
    w.reset();
    const names = this.names;
    const vals = this.vals;
    for (let k = 0; k < this.count; k++) {
      const n = mergeLabels(this.defs[k]!, this.origins[k] ?? null, external, names, vals);
      const def = this.defs[k]!;
      w.sample(names, vals, n, this.values[k]!, this.times[k]!, this.stale[k] === 1, METRIC_TYPE[def.type] ?? 0, def.help);
    }
    this.clear();
    return w.view();
  }

  clear(): void {
    // Drop the references so definitions of forgotten origins can be collected.
    this.defs.length = 0;
    this.origins.length = 0;
    this.count = 0;
  }

  private grow(): void {
    const n = this.count + 1;
    this.values = grownTo(this.values, n);
    this.times = grownTo(this.times, n);
    this.stale = grownTo(this.stale, n);
  }
}

/** External labels, sorted by name: added to a series that does not carry the label already. */
export type ExternalLabels = readonly (readonly [string, string])[];

/**
 * The series' labels as remote_write wants them, sorted by name into `names`/`vals` (scratch
 * arrays the caller reuses): __name__, its own labels (its `instance` replaced by the origin, as on
 * the root's page), `instance` (and `cluster`, for a cluster's origin at a central root), and the
 * external labels it does not carry. A series of the root itself (no origin) keeps its own labels. Returns how many.
 */
export function mergeLabels(def: SeriesDef, origin: OriginIdentity | null, external: ExternalLabels, names: string[], vals: string[]): number {
  let n = put(names, vals, 0, "__name__", def.name);
  const cluster = origin?.cluster ?? null;
  for (const [name, value] of def.labels) if ((origin === null || name !== "instance") && value !== "" && !(cluster !== null && name === "cluster")) n = put(names, vals, n, name, value);
  if (cluster !== null) n = put(names, vals, n, "cluster", cluster);
  if (origin !== null) n = put(names, vals, n, "instance", origin.instance);
  for (const [name, value] of external) {
    let present = false;
    for (let k = 0; k < n; k++) if (names[k] === name) present = true;
    if (!present) n = put(names, vals, n, name, value);
  }
  return n;
}

/** Inserts into the sorted first `n` (a series has a handful of labels); returns n + 1. */
function put(names: string[], vals: string[], n: number, name: string, value: string): number {
  let k = n;
  while (k > 0 && names[k - 1]! > name) {
    names[k] = names[k - 1]!;
    vals[k] = vals[k - 1]!;
    k--;
  }
  names[k] = name;
  vals[k] = value;
  return n + 1;
}
