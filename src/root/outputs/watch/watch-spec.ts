import { Selector } from "../../../series/selector.js";

export const AGG_OPS = ["sum", "avg", "min", "max", "count"] as const;
export type AggOp = (typeof AGG_OPS)[number];

/** What a watcher asked for: series matching any selector, each as it is or aggregated by labels. */
export interface WatchSpec {
  readonly selectors: readonly Selector[];
  /** `sum by (partition)` of the matched series, evaluated at the root as values arrive; null: each series. */
  readonly agg: { readonly op: AggOp; readonly by: readonly string[] } | null;
  /** At most one message per series (or group) per this many ms. */
  readonly intervalMs: number;
}

/** A request's parts, before they are checked (HTTP query parameters, or the gRPC request). */
export interface WatchRequestParts {
  readonly match: readonly string[];
  readonly agg?: string;
  readonly by?: readonly string[];
  readonly intervalMs?: number;
}

const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Checks a request; a string says what is wrong (a 400, or gRPC INVALID_ARGUMENT). */
export function watchSpecOf(r: WatchRequestParts, defaultIntervalMs: number): WatchSpec | string {
  if (r.match.length === 0) return "match[]: expected at least one PromQL selector";
  if (r.match.length > 32) return `match[]: ${r.match.length} selectors, at most 32`;
  const selectors: Selector[] = [];
  for (const [k, text] of r.match.entries()) {
    const s = Selector.tryParse(text);
    if (typeof s === "string") return `match[${k}]: ${JSON.stringify(text.slice(0, 200))}: ${s}`;
    selectors.push(s);
  }
  const by = (r.by ?? []).flatMap((b) => b.split(",")).map((b) => b.trim()).filter((b) => b !== "");
  for (const b of by) if (!LABEL.test(b)) return `by: ${JSON.stringify(b.slice(0, 80))}: expected a label name`;
  if (by.length > 16) return "by: at most 16 labels";
  let agg: WatchSpec["agg"] = null;
  if (r.agg !== undefined && r.agg !== "") {
    if (!(AGG_OPS as readonly string[]).includes(r.agg)) return `agg: ${JSON.stringify(r.agg.slice(0, 40))}: expected one of ${AGG_OPS.join(", ")}`;
    agg = { op: r.agg as AggOp, by };
  } else if (by.length > 0) return "by: given without agg";
  const intervalMs = r.intervalMs ?? defaultIntervalMs;
  if (!Number.isInteger(intervalMs) || intervalMs < 100 || intervalMs > 3_600_000) return `interval_ms: ${intervalMs}: expected a whole number of ms from 100 to 3600000`;
  return { selectors, agg, intervalMs };
}

/** The parts of an HTTP request: `match[]` (or `match`) repeated, `agg`, `by` (repeated or comma-separated), `interval_ms`. */
export function watchPartsOf(params: URLSearchParams): WatchRequestParts {
  const interval = params.get("interval_ms");
  return {
    match: [...params.getAll("match[]"), ...params.getAll("match")],
    ...(params.get("agg") !== null ? { agg: params.get("agg")! } : {}),
    by: params.getAll("by"),
    ...(interval !== null ? { intervalMs: Number(interval) } : {}),
  };
}
