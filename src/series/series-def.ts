import { BanyanError, Code } from "../core/errors.js";

/**
 * What a series is: metric name, label set and type. The type decides how lossy a series may be
 * (counters and histogram parts are exact by default) and how the root writes `# TYPE`.
 */
export enum SeriesType {
  Gauge = 0,
  Counter = 1,
  /** `_bucket`, `_sum`, `_count` of a histogram: always exact, so a bucket never exceeds `_count`. */
  HistogramPart = 2,
  /** quantiles, `_sum`, `_count` of a summary: always exact. */
  SummaryPart = 3,
  Untyped = 4,
}

export const SERIES_TYPE_MAX = SeriesType.Untyped;

/** Labels as sorted [name, value] pairs (sorted by name, names unique). */
export type LabelPairs = readonly (readonly [string, string])[];

export interface SeriesDef {
  readonly name: string;
  readonly labels: LabelPairs;
  readonly type: SeriesType;
  /** The family the series belongs to (`# TYPE <family> …`): the name without `_bucket` etc. */
  readonly family: string;
  /** `# HELP` text of the family, or "" when unknown. */
  readonly help: string;
}

const COUNTER_SUFFIX = /_(total|count|sum|bucket)$/;

/**
 * The type a scraped or pushed sample travels as: an untyped `*_total` (`_count`, `_sum`, `_bucket`)
 * is a counter in all but name, so it goes exact like one.
 */
export function forwardedType(name: string, type: SeriesType): SeriesType {
  return type === SeriesType.Untyped && COUNTER_SUFFIX.test(name) ? SeriesType.Counter : type;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function isMetricName(name: string): boolean {
  return METRIC_NAME.test(name);
}

export function isLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith("__");
}

/** Builds a validated definition from loose labels; throws a BanyanError naming the bad part. */
export function seriesDef(
  name: string,
  labels: Readonly<Record<string, string>>,
  type: SeriesType,
  opts: { family?: string; help?: string } = {},
): SeriesDef {
  if (!isMetricName(name)) throw new BanyanError(Code.InvalidArgument, `metric name ${JSON.stringify(name)} is not a valid Prometheus name`);
  const pairs = Object.entries(labels).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  for (const [k] of pairs) {
    if (!isLabelName(k)) throw new BanyanError(Code.InvalidArgument, `${name}: label name ${JSON.stringify(k)} is not a valid Prometheus label name`);
  }
  return { name, labels: pairs, type, family: opts.family ?? familyOf(name, type), help: opts.help ?? "" };
}

/** The family name of a series name: histogram and summary parts lose their suffix. */
export function familyOf(name: string, type: SeriesType): string {
  if (type === SeriesType.HistogramPart || type === SeriesType.SummaryPart) {
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (name.endsWith(suffix)) return name.slice(0, -suffix.length);
    }
  }
  return name;
}

/** A stable identity key: `name{a="1",b="2"}` with labels sorted. Built once per definition. */
export function seriesKey(name: string, labels: LabelPairs): string {
  if (labels.length === 0) return name;
  let s = name + "{";
  for (let k = 0; k < labels.length; k++) {
    if (k > 0) s += ",";
    s += labels[k]![0] + '="' + escapeLabelValue(labels[k]![1]) + '"';
  }
  return s + "}";
}

/** Escapes a label value for the Prometheus text format (backslash, double quote, newline). */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n") : v;
}
