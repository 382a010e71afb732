import type { OriginIdentity } from "./origin-identity.js";
import { SeriesType, escapeLabelValue, type SeriesDef } from "../../series/series-def.js";

/** The two spellings of a Prometheus page a root serves. */
export type ExpositionFormat = "text" | "openmetrics";

export const TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/** `name{a="x",instance="node1"} ` with the origin as `instance` (and its `cluster`, forwarded by another root), built once per series. */
export function seriesPrefix(def: SeriesDef, origin: OriginIdentity): string {
  let s = def.name + "{";
  for (const [k, v] of def.labels) {
    if (k === "instance" || (k === "cluster" && origin.cluster !== null)) continue;
    s += k + '="' + escapeLabelValue(v) + '",';
  }
  if (origin.cluster !== null) s += 'cluster="' + escapeLabelValue(origin.cluster) + '",';
  return s + 'instance="' + escapeLabelValue(origin.instance) + '"} ';
}

/** Prometheus' spelling of a float: NaN, +Inf, -Inf, and -0 kept. */
export function formatValue(v: number): string {
  if (v !== v) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  if (v === 0 && 1 / v < 0) return "-0";
  return String(v);
}

const TYPE_TEXT = ["gauge", "counter", "histogram", "summary", "untyped"];
const TYPE_OPENMETRICS = ["gauge", "counter", "histogram", "summary", "unknown"];

/** `# HELP` and `# TYPE` of a family; OpenMetrics names a counter family without `_total`. */
export function familyHeader(name: string, type: SeriesType, help: string, format: ExpositionFormat): string {
  let family = name;
  let typeName = (format === "text" ? TYPE_TEXT : TYPE_OPENMETRICS)[type] ?? "untyped";
  if (format === "openmetrics" && type === SeriesType.Counter) {
    if (name.endsWith("_total")) family = name.slice(0, -6);
    else typeName = "unknown";
  }
  const h = help === "" ? "" : `# HELP ${family} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}\n`;
  return `${h}# TYPE ${family} ${typeName}\n`;
}
