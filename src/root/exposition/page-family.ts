import { SeriesType, type SeriesDef } from "../../series/series-def.js";

// Where a series goes on the root's page, so that the page stays one a strict parser takes whole.

/** The family-entry fields the checks read. */
interface PageFamily {
  readonly name: string;
  readonly type: SeriesType;
}

/** Whether a family, or a sample name its type gives it (`_bucket`, `_sum`, `_count`), is one of `reserved`. */
export function writesReserved(f: PageFamily, reserved: ReadonlySet<string>): boolean {
  if (reserved.has(f.name)) return true;
  if (f.type !== SeriesType.HistogramPart && f.type !== SeriesType.SummaryPart) return false;
  return reserved.has(`${f.name}_sum`) || reserved.has(`${f.name}_count`) || (f.type === SeriesType.HistogramPart && reserved.has(`${f.name}_bucket`));
}

/**
 * The family a series is filed under on the page: the one it names when its name belongs to that
 * family for the family's type (`typeOf`, or its own when the family is new): the family's own name,
 * a histogram's `_bucket`, `_sum` and `_count`, a summary's `_sum` and `_count`. Any other name goes
 * under a family of its own name, as a text parser would file it: a node cannot put
 * `node_cpu_seconds_total` under another family's # TYPE line, and `x_total` of an OpenMetrics
 * counter family `x` groups with the `x_total` other nodes send.
 */
export function pageFamilyOf(def: SeriesDef, typeOf: (family: string) => SeriesType | undefined): string {
  const family = def.family;
  const suffix = def.name.startsWith(family) ? def.name.slice(family.length) : null;
  const type = typeOf(family) ?? def.type;
  const fits =
    suffix === "" ||
    (type === SeriesType.HistogramPart && (suffix === "_bucket" || suffix === "_sum" || suffix === "_count")) ||
    (type === SeriesType.SummaryPart && (suffix === "_sum" || suffix === "_count"));
  const key = fits ? family : def.name;
  const keyType = fits ? type : (typeOf(key) ?? def.type);
  // A summary's quantile and a histogram's le must read as numbers, or the parser refuses the page.
  const special = keyType === SeriesType.SummaryPart ? "quantile" : keyType === SeriesType.HistogramPart ? "le" : null;
  if (special !== null) for (const [n, v] of def.labels) if (n === special && !FLOAT.test(v)) return OFF_PAGE;
  return key;
}

/** The family key of series kept off the page (never a metric name): counted, never rendered. */
export const OFF_PAGE = "\0off-page";

/** What Go's ParseFloat takes, conservatively (Prometheus' parsers read `le` and `quantile` with it). */
const FLOAT = /^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[Ii]nf|NaN)$/;
