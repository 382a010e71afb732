import { SeriesType } from "../../../series/series-def.js";

/** Prometheus' MetricType (prompb and io.prometheus.write.v2) of each series type. */
export const METRIC_TYPE: Record<SeriesType, number> = {
  [SeriesType.Counter]: 1,
  [SeriesType.Gauge]: 2,
  [SeriesType.HistogramPart]: 3,
  [SeriesType.SummaryPart]: 5,
  [SeriesType.Untyped]: 0,
};
