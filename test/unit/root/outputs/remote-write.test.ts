import fc from "fast-check";
import { uncompressSync } from "snappy";
import t from "tap";
import { retryAfterMs } from "../../../../src/root/outputs/remote-write/remote-write-client.js";
import { SampleBatch, mergeLabels } from "../../../../src/root/outputs/remote-write/sample-batch.js";
import { WriteRequestWriter } from "../../../../src/root/outputs/remote-write/write-request.js";
import { SeriesType, seriesDef } from "../../../../src/series/series-def.js";
import { decodeWriteRequest } from "../../../fixtures/write-request-reader.js";

const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/).filter((s) => !s.startsWith("__"));

t.test("remote_write - labels are sorted and unique, the origin is the instance, external labels never override", async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(labelName, fc.string({ maxLength: 6 })), { selector: ([n]) => n, maxLength: 8 }),
      fc.uniqueArray(fc.tuple(labelName, fc.string({ minLength: 1, maxLength: 6 })), { selector: ([n]) => n, maxLength: 4 }),
      fc.double({ noNaN: true }),
      fc.integer({ min: 0, max: 2 ** 42 }),
      (labels, external, value, ts) => {
        const def = seriesDef("m_x", Object.fromEntries(labels), SeriesType.Gauge);
        const ext = external.filter(([n]) => n !== "instance").sort(([a], [b]) => (a < b ? -1 : 1));
        const batch = new SampleBatch();
        batch.add(def, "node7", value, ts, 0);
        batch.add(def, "node7", NaN, ts + 1, 0, true);
        const req = decodeWriteRequest(batch.encode(new WriteRequestWriter(16), ext));
        t.equal(req.series.length, 2);
        const got = req.series[0]!;
        const names = got.labels.map(([n]) => n);
        t.same(names, [...new Set(names)].sort(), "sorted, unique");
        const map = new Map(got.labels);
        t.equal(map.get("__name__"), "m_x");
        t.equal(map.get("instance"), "node7");
        for (const [n, v] of labels) if (n !== "instance" && v !== "") t.equal(map.get(n), v, `own label ${n} kept`);
        for (const [n, v] of ext) if (!labels.some(([l, lv]) => l === n && lv !== "")) t.equal(map.get(n), v, `external ${n} added`);
        t.ok(Object.is(got.samples[0]!.value, value) && got.samples[0]!.ts === ts, "value and timestamp exact");
        t.equal(req.series[1]!.samples[0]!.bits, 0x7ff0000000000002n, "the staleness marker's NaN, bit for bit");
      },
    ),
    { numRuns: 150 },
  );
});

t.test("remote_write - labels merge into the caller's scratch without growing it past the labels", async (t) => {
  const names: string[] = [];
  const vals: string[] = [];
  const def = seriesDef("up", { job: "node", instance: "ignored", zone: "" }, SeriesType.Gauge);
  t.equal(mergeLabels(def, "n1", [["cluster", "c1"], ["job", "other"]], names, vals), 4);
  t.same(names.slice(0, 4), ["__name__", "cluster", "instance", "job"]);
  t.same(vals.slice(0, 4), ["up", "c1", "n1", "node"], "the series' own job wins over the external one; an empty label is no label");
});

t.test("remote_write - metadata and a snappy body as a receiver reads them", async (t) => {
  const w = new WriteRequestWriter();
  w.metadata("node_cpu_seconds_total", 1, "Seconds the CPUs spent in each mode.");
  const body = uncompressSync(Buffer.from((await import("snappy")).compressSync(w.view()))) as Buffer;
  t.same(decodeWriteRequest(body).metadata, [{ type: 1, family: "node_cpu_seconds_total", help: "Seconds the CPUs spent in each mode." }]);
});

t.test("remote_write - Retry-After in seconds or as a date", async (t) => {
  t.equal(retryAfterMs("3"), 3000);
  t.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
  t.equal(retryAfterMs("soon"), null);
  t.equal(retryAfterMs(undefined), null);
});
