import { readFileSync } from "node:fs";
import t from "tap";
import { packageFile } from "../../../src/core/package-file.js";
import { SeriesType } from "../../../src/series/series-def.js";
import { parseExposition } from "../../../src/series/text-parser.js";

t.test("text parser - a real node_exporter scrape parses whole", async (t) => {
  const r = parseExposition(readFileSync(packageFile("data/node_exporter-1.5.0-sample.prom"), "utf8"));
  t.same(r.errors, []);
  t.equal(r.samples.length, 507);
  const cpu = r.samples.find((s) => s.name === "node_cpu_seconds_total" && s.labels["mode"] === "idle")!;
  t.equal(cpu.type, SeriesType.Counter);
  t.equal(cpu.help, "Seconds the CPUs spent in each mode.");
  const q = r.samples.find((s) => s.name === "go_gc_duration_seconds_count")!;
  t.equal(q.family, "go_gc_duration_seconds");
  t.equal(q.type, SeriesType.SummaryPart);
});

t.test("text parser - escapes, specials, timestamps, histograms, OpenMetrics", async (t) => {
  const text = [
    "# HELP m A help\\nwith a newline and a \\\\ backslash",
    "# TYPE m gauge",
    'm{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} 1.5e3 1700000000000',
    "m{a=\"1\"} NaN",
    "m{a=\"2\"} +Inf",
    "m{a=\"3\"} -Inf",
    "# TYPE lat histogram",
    'lat_bucket{le="0.1"} 3',
    'lat_bucket{le="+Inf"} 5',
    "lat_sum 0.7",
    "lat_count 5",
    "# TYPE req counter",
    "req_total 12 1700000000.5",
    "untyped_thing 7",
    "# EOF",
    "after_eof 1",
  ].join("\n");
  const r = parseExposition(text);
  t.same(r.errors, []);
  t.equal(r.samples.length, 10, "nothing after # EOF");
  const first = r.samples[0]!;
  t.same(first.labels, { path: "C:\\dir", quote: 'say "hi"', nl: "a\nb" });
  t.equal(first.value, 1500);
  t.equal(first.timestampMs, 1700000000000);
  t.equal(first.help, "A help\nwith a newline and a \\ backslash");
  t.ok(Number.isNaN(r.samples[1]!.value));
  t.equal(r.samples[2]!.value, Infinity);
  t.equal(r.samples[3]!.value, -Infinity);
  t.same(r.samples.slice(4, 8).map((s) => [s.family, s.type]), Array(4).fill(["lat", SeriesType.HistogramPart]));
  const req = r.samples[8]!;
  t.equal(req.name, "req_total");
  t.equal(req.type, SeriesType.Counter, "an OpenMetrics counter family named without _total");
  t.equal(req.timestampMs, 1700000000500, "OpenMetrics timestamps are seconds");
  t.equal(r.samples[9]!.type, SeriesType.Untyped);
});

t.test("text parser - a bad line is reported with its number and the good lines are kept", async (t) => {
  const r = parseExposition(["good 1", 'bad{a="x} 1', "also_good 2", "bad2{=\"x\"} 1", "no_value", "bad3 one", "# TYPE t wobbly", "good3 3"].join("\n"));
  t.same(r.samples.map((s) => s.name), ["good", "also_good", "good3"]);
  t.same(r.errors.map((e) => e.line), [2, 4, 5, 6, 7]);
  t.match(r.errors[0]!.message, /unterminated label value/);
  t.match(r.errors[4]!.message, /unknown type "wobbly"/);
});

import fc from "fast-check";
import { ExpositionCache } from "../../../src/root/exposition/exposition-cache.js";
import { seriesDef } from "../../../src/series/series-def.js";
import { OriginState } from "../../../src/root/ingest/origin-state.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { DEFAULT_SERIES_LIMITS } from "../../../src/series/payload.js";

t.test("text parser - fuzzed: never throws on any input", async () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary", maxLength: 400 }), (s) => {
      parseExposition(s);
    }),
    { numRuns: 3000, seed: 8 },
  );
  fc.assert(
    fc.property(fc.array(fc.constantFrom("# TYPE m counter", 'm{a="', "\\", '"', "}", " 1", "\n", "NaN", "# HELP m x\\", ",", "=", "m_total", " ", "{", "+Inf", "1e9"), { maxLength: 60 }), (parts) => {
      parseExposition(parts.join(""));
    }),
    { numRuns: 3000, seed: 9 },
  );
});

t.test("text parser - what a root renders parses back to the same series and values", async (t) => {
  const labelValue = fc.string({ maxLength: 12 });
  fc.assert(
    fc.property(fc.array(fc.tuple(labelValue, fc.oneof(fc.double({ noNaN: true }), fc.constant(NaN))), { minLength: 1, maxLength: 20 }), (rows) => {
      const enc = new DeltaEncoder();
      rows.forEach(([v, x], k) => enc.set(enc.define(seriesDef("fuzz_value", { k: String(k), v }, 0)), x));
      const cache = new ExpositionCache();
      const st = new OriginState("n1", cache, DEFAULT_SERIES_LIMITS);
      st.apply(enc.encode()!.payload, "key");
      st.setVisible(true);
      const parsed = parseExposition(cache.renderText("text"));
      if (parsed.errors.length > 0) throw new Error(JSON.stringify(parsed.errors));
      if (parsed.samples.length !== rows.length) throw new Error("count");
      for (const s of parsed.samples) {
        const [v, x] = rows[Number(s.labels["k"])]!;
        if (s.labels["v"] !== v) throw new Error(`label ${JSON.stringify(s.labels["v"])} vs ${JSON.stringify(v)}`);
        const held = st.value(Number(s.labels["k"]));
        if (!(Object.is(s.value, held) || (Number.isNaN(s.value) && Number.isNaN(held)))) throw new Error(`value ${s.value} vs ${held} (${x})`);
      }
    }),
    { numRuns: 300, seed: 10 },
  );
  t.pass();
});
