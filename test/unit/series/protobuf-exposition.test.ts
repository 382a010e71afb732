import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import t from "tap";
import { MetricFamilySchema, MetricType } from "../../../src/gen/io/prometheus/client/metrics_pb.js";
import { parseDelimitedFamilies } from "../../../src/series/protobuf-exposition.js";
import { SeriesType } from "../../../src/series/series-def.js";

type Init = Parameters<typeof create<typeof MetricFamilySchema>>[1];
const delimited = (families: Init[]): Uint8Array => {
  const w = new BinaryWriter();
  for (const f of families) w.bytes(toBinary(MetricFamilySchema, create(MetricFamilySchema, f)));
  return w.finish();
};

t.test("protobuf pushes - families become the samples the text format would give", async (t) => {
  const r = parseDelimitedFamilies(
    delimited([
      { name: "lat_seconds", help: "Latency.", type: MetricType.HISTOGRAM, metric: [{ label: [{ name: "op", value: "read" }], histogram: { sampleCount: 3n, sampleSum: 0.6, bucket: [{ upperBound: 0.5, cumulativeCount: 2n }, { upperBound: Infinity, cumulativeCount: 3n }] } }] },
      { name: "up_ratio", type: MetricType.GAUGE, metric: [{ gauge: { value: NaN } }] },
    ]),
  );
  t.same(r.errors, []);
  t.same(
    r.samples.map((s) => [s.name, s.labels, s.value, s.type, s.family]),
    [
      ["lat_seconds_bucket", { op: "read", le: "0.5" }, 2, SeriesType.HistogramPart, "lat_seconds"],
      ["lat_seconds_bucket", { op: "read", le: "+Inf" }, 3, SeriesType.HistogramPart, "lat_seconds"],
      ["lat_seconds_sum", { op: "read" }, 0.6, SeriesType.HistogramPart, "lat_seconds"],
      ["lat_seconds_count", { op: "read" }, 3, SeriesType.HistogramPart, "lat_seconds"],
      ["up_ratio", {}, NaN, SeriesType.Gauge, "up_ratio"],
    ],
    "an explicit +Inf bucket is not doubled; NaN travels",
  );
  t.equal(r.samples[0]!.help, "Latency.");
  t.equal(r.samples[0]!.timestampMs, null, "no timestamp unless the message sets one");
});

t.test("protobuf pushes - bad names are errors numbered by family, the good families kept; broken framing stops", async (t) => {
  const r = parseDelimitedFamilies(
    delimited([
      { name: "ok_total", type: MetricType.COUNTER, metric: [{ counter: { value: 1 } }] },
      { name: "bad name", type: MetricType.GAUGE, metric: [{ gauge: { value: 1 } }] },
      { name: "labelled", type: MetricType.GAUGE, metric: [{ label: [{ name: "0x", value: "y" }], gauge: { value: 1 } }] },
    ]),
  );
  t.same(r.samples.map((s) => s.name), ["ok_total"]);
  t.same(r.errors.map((e) => e.line), [2, 3]);
  t.match(r.errors[1]!.message, /family 3 \(labelled\): "0x" is not a label name/);
  const cut = parseDelimitedFamilies(delimited([{ name: "a", type: MetricType.GAUGE, metric: [{ gauge: { value: 1 } }] }]).subarray(0, 5));
  t.match(cut.errors[0]!.message, /family 1 does not decode/);
});

t.test("protobuf pushes - any bytes: never a throw", async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const r = parseDelimitedFamilies(bytes);
      return Array.isArray(r.samples) && Array.isArray(r.errors);
    }),
    { numRuns: 3000 },
  );
});
