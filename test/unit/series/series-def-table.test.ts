import fc from "fast-check";
import t from "tap";
import { DeltaDecoder } from "../../../src/series/delta-decoder.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { DEFAULT_SERIES_LIMITS } from "../../../src/series/payload.js";
import { SeriesType, seriesDef } from "../../../src/series/series-def.js";
import { SeriesDefTable } from "../../../src/series/series-def-table.js";

// Small alphabets, so that definitions meet often; values and help with the characters a key joins
// on (NUL) and digits, so that a key that did not carry lengths would spell two definitions alike.
const text = fc.constantFrom("", "0", "1", "\0", "\u00000", "0\0", "\0a\0x", "\0a\u00001\0x", "x", "x\0b\0x", "x\0b\u00001\0x");
const labelName = fc.constantFrom("a", "b", "c");
const definition = fc.record({
  name: fc.constantFrom("m", "m_total", "n"),
  type: fc.constantFrom(SeriesType.Gauge, SeriesType.Counter),
  family: fc.constantFrom("m", "n"),
  help: text,
  labels: fc.uniqueArray(fc.tuple(labelName, text), { maxLength: 3, selector: ([k]) => k }).map((ls) => ls.sort(([a], [b]) => (a < b ? -1 : 1))),
});
const flat = (labels: readonly (readonly [string, string])[]): string[] => labels.flatMap(([k, v]) => [k, v]);

t.test("series def table - every definition reads back as given, a series defined as before is shared, the table stays in its bounds", async (t) => {
  fc.assert(
    fc.property(fc.array(definition, { maxLength: 80 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 8, max: 2000 }), (defs, maxEntries, maxChars) => {
      const table = new SeriesDefTable(maxEntries, maxChars);
      /** Per series (name and labels): what it was last defined as, and the object given then. */
      const last = new Map<string, { content: string; def: object }>();
      for (const d of defs) {
        const resetsBefore = table.resets;
        const got = table.get(d.name, d.type, d.family, d.help, flat(d.labels), d.labels.length);
        if (got.name !== d.name || got.type !== d.type || got.family !== d.family || got.help !== d.help) return false;
        if (JSON.stringify(got.labels) !== JSON.stringify(d.labels)) return false;
        if (table.size > maxEntries) return false;
        if (table.resets !== resetsBefore) last.clear();
        // Defined as it was the last time, with no fresh start between: the very same object.
        const series = JSON.stringify([d.name, d.labels]);
        const content = JSON.stringify(d);
        const before = last.get(series);
        if (before !== undefined && before.content === content && before.def !== got) return false;
        last.set(series, { content, def: got });
      }
      return true;
    }),
    { numRuns: 500 },
  );
});

t.test("series def table - two definitions share an object exactly when they are the same", async (t) => {
  // One name and type, so that only help and labels tell two apart: where a key without lengths
  // would read a=x,b=x and a="x\0b\0x" alike.
  const narrow = fc.record({ help: text, labels: fc.uniqueArray(fc.tuple(fc.constantFrom("a", "b"), text), { maxLength: 2, selector: ([k]) => k }).map((ls) => ls.sort(([a], [b]) => (a < b ? -1 : 1))) });
  fc.assert(
    fc.property(narrow, narrow, (x, y) => {
      const table = new SeriesDefTable();
      const a = table.get("m", SeriesType.Gauge, "m", x.help, flat(x.labels), x.labels.length);
      const b = table.get("m", SeriesType.Gauge, "m", y.help, flat(y.labels), y.labels.length);
      return (a === b) === (JSON.stringify(x) === JSON.stringify(y)) && b.help === y.help && JSON.stringify(b.labels) === JSON.stringify(y.labels);
    }),
    { numRuns: 5000 },
  );
});

t.test("series def table - label sets a joined key would spell alike stay apart", async (t) => {
  const table = new SeriesDefTable();
  const pairs: [string[], string[]][] = [
    [["a", "x", "b", "x"], ["a", "x\0b\0x"]],
    [["a", "x", "b", "1"], ["a", "x\0b\u00001"]],
    [["a", ""], ["a", "\0"]],
  ];
  for (const [x, y] of pairs) {
    const a = table.get("m", SeriesType.Gauge, "m", "", x, x.length / 2);
    const b = table.get("m", SeriesType.Gauge, "m", "", y, y.length / 2);
    t.not(a, b, JSON.stringify([x, y]));
    t.same(b.labels.flat(), y);
  }
});

t.test("series def table - two origins defining the same series share one definition object", async (t) => {
  const table = new SeriesDefTable();
  const decoders = [new DeltaDecoder(DEFAULT_SERIES_LIMITS, table), new DeltaDecoder(DEFAULT_SERIES_LIMITS, table)];
  for (const dec of decoders) {
    const enc = new DeltaEncoder();
    enc.define(seriesDef("node_cpu_seconds_total", { cpu: "0", mode: "idle" }, SeriesType.Counter, { help: "Seconds the CPUs spent in each mode." }));
    enc.define(seriesDef("node_load1", {}, SeriesType.Gauge, { help: "1m load average." }));
    enc.set(0, 1);
    enc.set(1, 2);
    dec.apply(enc.encode()!.payload, "key");
  }
  t.equal(decoders[0]!.def(0), decoders[1]!.def(0), "the labelled series: one object");
  t.equal(decoders[0]!.def(1), decoders[1]!.def(1), "the unlabelled one too");
  t.same(decoders[0]!.def(0)!.labels, [["cpu", "0"], ["mode", "idle"]]);
  t.equal(table.size, 2);
  t.equal(table.shared, 2);
});
