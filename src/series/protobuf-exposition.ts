import { fromBinary, isFieldSet } from "@bufbuild/protobuf";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { MetricFamilySchema, MetricSchema, MetricType, type Metric, type MetricFamily } from "../gen/io/prometheus/client/metrics_pb.js";
import { SeriesType, isLabelName, isMetricName } from "./series-def.js";
import type { ParsedSample, ParseResult } from "./text-parser.js";

/** The Content-Type of the Go client's pushes: length-delimited MetricFamily messages. */
export const PROTOBUF_DELIMITED = /^application\/vnd\.google\.protobuf\b/i;

/** A bound as the text format writes it. */
const bound = (v: number): string => (v === Infinity ? "+Inf" : v === -Infinity ? "-Inf" : String(v));

/**
 * Length-delimited `io.prometheus.client.MetricFamily` messages (what client_golang's push sends) as
 * the samples the text parser would give for the same metrics: summaries as `{quantile}`, `_sum`
 * and `_count`; histograms as `_bucket{le}` (with the `+Inf` bucket the message may leave out),
 * `_sum` and `_count`. A family that does not decode or names a bad metric or label is an error
 * numbered by its position ("line" is the family's index, from 1); the others are kept.
 */
export function parseDelimitedFamilies(body: Uint8Array): ParseResult {
  const samples: ParsedSample[] = [];
  const errors: { line: number; message: string }[] = [];
  const reader = new BinaryReader(body);
  for (let n = 1; reader.pos < reader.len; n++) {
    let mf: MetricFamily;
    try {
      // What a pusher adds beyond the exposition's fields is not kept (nothing reads it).
      mf = fromBinary(MetricFamilySchema, reader.bytes(), { readUnknownFields: false });
    } catch (err) {
      errors.push({ line: n, message: `family ${n} does not decode: ${(err as Error).message}` });
      break; // the framing is lost: nothing after it can be trusted
    }
    const problem = familySamples(mf, samples);
    if (problem !== null) errors.push({ line: n, message: `family ${n} (${mf.name || "no name"}): ${problem}` });
  }
  return { samples, errors };
}

function familySamples(mf: MetricFamily, out: ParsedSample[]): string | null {
  const name = mf.name;
  if (!isMetricName(name)) return `"${name}" is not a metric name`;
  const help = mf.help;
  const kept = out.length;
  for (const m of mf.metric) {
    const labels: Record<string, string> = {};
    for (const l of m.label) {
      if (!isLabelName(l.name)) {
        out.length = kept;
        return `"${l.name}" is not a label name`;
      }
      labels[l.name] = l.value;
    }
    const timestampMs = isFieldSet(m, MetricSchema.field.timestampMs) ? Number(m.timestampMs) : null;
    const put = (n: string, extra: Record<string, string>, value: number, type: SeriesType): void => {
      out.push({ name: n, labels: { ...labels, ...extra }, value, timestampMs, family: name, type, help });
    };
    metricSamples(mf.type, name, m, put);
  }
  return null;
}

function metricSamples(type: MetricType, name: string, m: Metric, put: (n: string, extra: Record<string, string>, value: number, type: SeriesType) => void): void {
  switch (type) {
    case MetricType.COUNTER:
      put(name, {}, m.counter?.value ?? 0, SeriesType.Counter);
      return;
    case MetricType.GAUGE:
      put(name, {}, m.gauge?.value ?? 0, SeriesType.Gauge);
      return;
    case MetricType.SUMMARY:
      for (const q of m.summary?.quantile ?? []) put(name, { quantile: bound(q.quantile) }, q.value, SeriesType.SummaryPart);
      put(`${name}_sum`, {}, m.summary?.sampleSum ?? 0, SeriesType.SummaryPart);
      put(`${name}_count`, {}, Number(m.summary?.sampleCount ?? 0), SeriesType.SummaryPart);
      return;
    case MetricType.HISTOGRAM:
    case MetricType.GAUGE_HISTOGRAM: {
      const h = m.histogram;
      const count = Number(h?.sampleCount ?? 0);
      const buckets = h?.bucket ?? [];
      for (const b of buckets) put(`${name}_bucket`, { le: bound(b.upperBound) }, Number(b.cumulativeCount), SeriesType.HistogramPart);
      if (buckets.at(-1)?.upperBound !== Infinity) put(`${name}_bucket`, { le: "+Inf" }, count, SeriesType.HistogramPart);
      put(`${name}_sum`, {}, h?.sampleSum ?? 0, SeriesType.HistogramPart);
      put(`${name}_count`, {}, count, SeriesType.HistogramPart);
      return;
    }
    default:
      put(name, {}, m.untyped?.value ?? 0, SeriesType.Untyped);
  }
}
