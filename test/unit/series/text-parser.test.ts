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
