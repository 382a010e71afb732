import fc from "fast-check";
import t from "tap";
import { AggregateEngine, type AggregateRule } from "../../../../src/root/ingest/aggregates.js";
import { ExpositionCache } from "../../../../src/root/exposition/exposition-cache.js";
import { familyHeader, formatValue, seriesPrefix } from "../../../../src/root/exposition/exposition-text.js";
import { OriginState } from "../../../../src/root/ingest/origin-state.js";
import { DeltaEncoder } from "../../../../src/series/delta-encoder.js";
import { DEFAULT_SERIES_LIMITS } from "../../../../src/series/payload.js";
import { PrecisionRules } from "../../../../src/series/precision.js";
import { SeriesType, seriesDef } from "../../../../src/series/series-def.js";

t.test("exposition - values and headers in the text format and OpenMetrics", async (t) => {
  t.same([NaN, Infinity, -Infinity, -0, 0, 1.5, 1e21].map(formatValue), ["NaN", "+Inf", "-Inf", "-0", "0", "1.5", "1e+21"]);
  t.equal(familyHeader("x_total", SeriesType.Counter, "Things.\nMore \\ here", "text"), "# HELP x_total Things.\\nMore \\\\ here\n# TYPE x_total counter\n");
  t.equal(familyHeader("x_total", SeriesType.Counter, "", "openmetrics"), "# TYPE x counter\n", "OpenMetrics names a counter family without _total");
  t.equal(familyHeader("x", SeriesType.Counter, "", "openmetrics"), "# TYPE x unknown\n", "a counter without _total is unknown in OpenMetrics");
  t.equal(familyHeader("x", SeriesType.Untyped, "", "text"), "# TYPE x untyped\n");
  t.equal(familyHeader("lat", SeriesType.HistogramPart, "", "openmetrics"), "# TYPE lat histogram\n");
  t.equal(seriesPrefix(seriesDef("m", { path: 'a"b\\c\nd', instance: "spoofed" }, SeriesType.Gauge), { instance: "n1", cluster: null }), 'm{path="a\\"b\\\\c\\nd",instance="n1"} ', "escaped, and the origin is the instance");
});

/** Feeds an origin state from an encoder, as the root does. */
function feed(enc: DeltaEncoder, st: OriginState, key = false): ReturnType<OriginState["apply"]> | null {
  const f = enc.encode();
  return f === null ? null : st.apply(f.payload, key ? "key" : f.kind);
}

t.test("exposition - families grouped across origins, each # TYPE once, down origins leave the page", async (t) => {
  const cache = new ExpositionCache();
  const a = new OriginState("a", cache, DEFAULT_SERIES_LIMITS);
  const b = new OriginState("b", cache, DEFAULT_SERIES_LIMITS);
  for (const [st, base] of [[a, 1], [b, 10]] as const) {
    const enc = new DeltaEncoder();
    enc.set(enc.define(seriesDef("temp", { s: "1" }, SeriesType.Gauge, { help: "Temp." })), base);
    enc.set(enc.define(seriesDef("ops_total", {}, SeriesType.Counter)), base * 2);
    feed(enc, st);
    st.setVisible(true);
  }
  const page = cache.renderText("text");
  t.equal((page.match(/# TYPE temp gauge/g) ?? []).length, 1);
  t.match(page, 'ops_total{instance="a"} 2\nops_total{instance="b"} 20\n# HELP temp Temp.\n# TYPE temp gauge\ntemp{s="1",instance="a"} 1\ntemp{s="1",instance="b"} 10\n');
  b.setVisible(false);
  t.notMatch(cache.renderText("text"), /instance="b"/, "a node that is down leaves the page");
  a.setVisible(false);
  t.equal(cache.renderText("text"), "", "no family without members");
});

t.test("aggregates - incremental results equal a recomputation, whatever the updates", async (t) => {
  const rules: AggregateRule[] = (["sum", "avg", "min", "max", "count"] as const).map((expr) => ({ record: `agg_${expr}`, expr, metric: "load", by: ["rack"] }));
  fc.assert(
    fc.property(
      fc.array(fc.record({ node: fc.integer({ min: 0, max: 3 }), sensor: fc.integer({ min: 0, max: 3 }), value: fc.oneof(fc.integer({ min: -50, max: 50 }), fc.constant(NaN)), drop: fc.boolean() }), { minLength: 1, maxLength: 80 }),
      (steps) => {
        const cache = new ExpositionCache();
        const engine = new AggregateEngine(rules);
        const encs = [0, 1, 2, 3].map(() => new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0, absolute: 0 }])));
        const states = [0, 1, 2, 3].map((k) => new OriginState(`n${k}`, cache, DEFAULT_SERIES_LIMITS));
        const truth = new Map<string, number>();
        const started = [false, false, false, false];
        for (const s of steps) {
          const enc = encs[s.node]!;
          const id = enc.define(seriesDef("load", { rack: `r${s.node % 2}`, sensor: String(s.sensor) }, SeriesType.Gauge));
          if (s.drop && truth.has(`${s.node}/${s.sensor}`)) {
            enc.remove(id);
            truth.delete(`${s.node}/${s.sensor}`);
          } else {
            enc.set(id, s.value);
            truth.set(`${s.node}/${s.sensor}`, s.value);
          }
          const st = states[s.node]!;
          const applied = feed(enc, st);
          if (applied === null) continue;
          if (!started[s.node]) {
            started[s.node] = true;
            st.setVisible(true);
            engine.join(st);
          } else {
            engine.onApplied(st, applied, false);
          }
        }
        const page = engine.render("text");
        for (const rack of ["r0", "r1"]) {
          const vals = [...truth].filter(([k]) => Number(k.split("/")[0]) % 2 === Number(rack[1])).map(([, v]) => v).filter((v) => !Number.isNaN(v));
          const members = [...truth].some(([k]) => Number(k.split("/")[0]) % 2 === Number(rack[1]));
          const want: Record<string, number> = {
            sum: vals.reduce((a, b) => a + b, 0),
            count: vals.length,
            avg: vals.length ? vals.reduce((a, b) => a + b, 0) / vals.length : NaN,
            min: vals.length ? Math.min(...vals) : NaN,
            max: vals.length ? Math.max(...vals) : NaN,
          };
          for (const [expr, v] of Object.entries(want)) {
            const m = new RegExp(`^agg_${expr}\\{rack="${rack}"\\} (\\S+)$`, "m").exec(page);
            if (!members) continue;
            if (m === null) throw new Error(`agg_${expr}{rack=${rack}} missing\n${page}`);
            const got = m[1] === "NaN" ? NaN : Number(m[1]);
            if (!(Object.is(got, v) || Math.abs(got - v) < 1e-9 || (Number.isNaN(got) && Number.isNaN(v)))) throw new Error(`agg_${expr}{rack=${rack}}: ${got} vs ${v}`);
          }
        }
      },
    ),
    { numRuns: 200, seed: 9 },
  );
});

t.test("exposition - series that come and go in batches of any size: the page shows exactly the live ones", async (t) => {
  const op = fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant("set" as const), s: fc.integer({ min: 0, max: 80 }), v: fc.integer({ min: 0, max: 9 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("drop" as const), from: fc.integer({ min: 0, max: 80 }), n: fc.integer({ min: 1, max: 40 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("tick" as const) }) },
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 200 }), (ops) => {
      const cache = new ExpositionCache();
      const st = new OriginState("n1", cache, DEFAULT_SERIES_LIMITS);
      const enc = new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0, absolute: 0 }]));
      const ids = new Map<number, number>();
      const truth = new Map<number, number>();
      const def = (s: number) => seriesDef(`f${s % 3}`, { s: String(s) }, SeriesType.Gauge);
      let started = false;
      for (const o of [...ops, { k: "tick" as const }]) {
        if (o.k === "set") {
          let id = ids.get(o.s);
          if (id === undefined) ids.set(o.s, (id = enc.define(def(o.s))));
          enc.set(id, o.v);
          truth.set(o.s, o.v);
        } else if (o.k === "drop") {
          for (let s = o.from; s < o.from + o.n; s++) {
            const id = ids.get(s);
            if (id === undefined) continue;
            enc.remove(id);
            ids.delete(s);
            truth.delete(s);
          }
        } else {
          if (feed(enc, st) !== null && !started) {
            started = true;
            st.setVisible(true);
          }
          if (!started) continue;
          const lines = cache.renderText("text").split("\n").filter((l) => l !== "" && !l.startsWith("#")).sort();
          const want = [...truth].map(([s, v]) => `f${s % 3}{s="${s}",instance="n1"} ${v}`).sort();
          if (JSON.stringify(lines) !== JSON.stringify(want)) throw new Error(`page ${JSON.stringify(lines)} vs ${JSON.stringify(want)}`);
        }
      }
    }),
    { numRuns: 200 },
  );
});

t.test("exposition - a family's TYPE and HELP are a vote of the origins on the page, not who spoke first; the losers are left off and counted; a family leaves with its last origin", async (t) => {
  const cache = new ExpositionCache();
  const origin = (name: string, type: SeriesType, help: string): OriginState => {
    const st = new OriginState(name, cache, DEFAULT_SERIES_LIMITS);
    const enc = new DeltaEncoder();
    enc.set(enc.define(seriesDef("temp", {}, type, { help })), 1);
    feed(enc, st);
    st.setVisible(true);
    return st;
  };
  const liar = origin("liar", SeriesType.Counter, "Lies.");
  const a = origin("a", SeriesType.Gauge, "Temperature.");
  let page = cache.renderText("text");
  t.equal((page.match(/# TYPE temp /g) ?? []).length, 1, "one # TYPE line");
  t.match(page, /# TYPE temp gauge\n/, "1 against 1: the lower type code (gauge) wins the tie, though the counter spoke first");
  const b = origin("b", SeriesType.Gauge, "Temperature.");
  page = cache.renderText("text");
  t.match(page, /# HELP temp Temperature\.\n# TYPE temp gauge\ntemp\{instance="a"\} 1\ntemp\{instance="b"\} 1\n/, "two gauges against one counter");
  t.notMatch(page, /instance="liar"/, "the other type is left off the page");
  t.equal(cache.conflicting, 1, "and counted");
  a.setVisible(false);
  b.setVisible(false);
  t.match(cache.renderText("text"), /# TYPE temp counter\ntemp\{instance="liar"\} 1\n/, "the vote follows who is on the page");
  t.equal(cache.familyCount, 1);
  for (const st of [liar, a, b]) st.clear();
  t.equal(cache.familyCount, 0, "the family left with its last origin");
});

t.test("exposition - whatever types and HELP texts origins give their families, the page has one # TYPE and at most one # HELP per family", async (t) => {
  const types = [SeriesType.Gauge, SeriesType.Counter, SeriesType.Untyped];
  fc.assert(
    fc.property(
      fc.array(fc.record({ family: fc.integer({ min: 0, max: 3 }), type: fc.constantFrom(...types), help: fc.constantFrom("", "A.", "B."), up: fc.boolean() }), { minLength: 1, maxLength: 30 }),
      (origins) => {
        const cache = new ExpositionCache();
        origins.forEach((o, k) => {
          const st = new OriginState(`n${k}`, cache, DEFAULT_SERIES_LIMITS);
          const enc = new DeltaEncoder();
          enc.set(enc.define(seriesDef(`f${o.family}_total`, {}, o.type, { help: o.help })), k);
          feed(enc, st);
          st.setVisible(o.up);
        });
        const page = cache.renderText("text");
        const typeLines = page.match(/^# TYPE \S+/gm) ?? [];
        const helpLines = page.match(/^# HELP \S+/gm) ?? [];
        if (new Set(typeLines).size !== typeLines.length || new Set(helpLines).size !== helpLines.length) throw new Error(page);
        // Every sample line sits under its family's header, and the shown ones are the winners.
        const shown = page.split("\n").filter((l) => l !== "" && !l.startsWith("#")).length;
        if (shown + cache.conflicting !== origins.filter((o) => o.up).length) throw new Error(`${shown} shown + ${cache.conflicting} conflicting\n${page}`);
      },
    ),
    { numRuns: 300 },
  );
});

t.test("exposition - a chunk that moved is written again in place when it is as long as before and no other page is open, into a new buffer when one is", async (t) => {
  const cache = new ExpositionCache();
  const st = new OriginState("n1", cache, DEFAULT_SERIES_LIMITS);
  const enc = new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0, absolute: 0 }]));
  const id = enc.define(seriesDef("temp", {}, SeriesType.Gauge));
  enc.set(id, 10);
  feed(enc, st);
  st.setVisible(true);
  const chunkOf = async (): Promise<{ text: string; chunk: Buffer; done: () => void }> => {
    const page = await cache.renderSliced("text");
    return { text: Buffer.concat(page.parts).toString(), chunk: page.parts[1]!, done: page.done };
  };
  const first = await chunkOf();
  first.done();
  enc.set(id, 11);
  feed(enc, st);
  const second = await chunkOf();
  t.equal(second.text, '# TYPE temp gauge\ntemp{instance="n1"} 11\n');
  t.equal(second.chunk.buffer, first.chunk.buffer, "the same memory");
  t.equal(second.chunk.byteOffset, first.chunk.byteOffset, "at the same place");
  // `second` is still open: the next render may not write where its parts point.
  enc.set(id, 12);
  feed(enc, st);
  const third = await chunkOf();
  t.equal(third.text, '# TYPE temp gauge\ntemp{instance="n1"} 12\n');
  t.equal(Buffer.concat([second.chunk]).toString(), 'temp{instance="n1"} 11\n', "the open page's chunk is as it was rendered");
  t.ok(third.chunk.buffer !== second.chunk.buffer || third.chunk.byteOffset !== second.chunk.byteOffset, "the new lines went elsewhere");
  second.done();
  third.done();
  second.done(); // closing twice counts once
  enc.set(id, 1e21);
  feed(enc, st);
  const fourth = await chunkOf();
  t.equal(fourth.text, '# TYPE temp gauge\ntemp{instance="n1"} 1e+21\n', "longer than before: a new buffer, written whole");
  fourth.done();
});

t.test("exposition - pages rendered in slices equal a page rendered afresh, and an open page's parts never change, whatever renders overlap it", async (t) => {
  const exact = (): PrecisionRules => new PrecisionRules([{ match: "*", relative: 0, absolute: 0 }]);
  fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.record({ k: fc.constant("set" as const), node: fc.integer({ min: 0, max: 2 }), s: fc.integer({ min: 0, max: 7 }), v: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double({ noNaN: false }), fc.constant(123456789.125)) }),
          fc.record({ k: fc.constant("drop" as const), node: fc.integer({ min: 0, max: 2 }), s: fc.integer({ min: 0, max: 7 }) }),
          fc.record({ k: fc.constant("open" as const) }),
          fc.record({ k: fc.constant("close" as const), which: fc.nat() }),
        ),
        { minLength: 1, maxLength: 60 },
      ),
      async (steps) => {
        // The cache under test, rendered in slices and reusing chunks; a reference fed the same frames, rendered afresh each time.
        const cache = new ExpositionCache();
        const ref = new ExpositionCache();
        const nodes = [0, 1, 2].map((k) => ({ enc: new DeltaEncoder(exact()), st: new OriginState(`n${k}`, cache, DEFAULT_SERIES_LIMITS), rs: new OriginState(`n${k}`, ref, DEFAULT_SERIES_LIMITS), ids: new Map<number, number>(), up: false }));
        const open: { parts: Buffer[]; done: () => void; text: string }[] = [];
        for (const s of steps) {
          if (s.k === "set" || s.k === "drop") {
            const n = nodes[s.node]!;
            let id = n.ids.get(s.s);
            if (s.k === "set") {
              if (id === undefined) n.ids.set(s.s, (id = n.enc.define(seriesDef(`f${s.s % 3}`, { s: String(s.s) }, SeriesType.Gauge))));
              n.enc.set(id, s.v);
            } else if (id !== undefined) {
              n.enc.remove(id);
              n.ids.delete(s.s);
            }
            const f = n.enc.encode();
            if (f === null) continue;
            n.st.apply(f.payload, f.kind);
            n.rs.apply(f.payload, f.kind);
            if (!n.up) {
              n.up = true;
              n.st.setVisible(true);
              n.rs.setVisible(true);
            }
          } else if (s.k === "open") {
            const page = await cache.renderSliced("text");
            const text = Buffer.concat(page.parts).toString();
            const want = ref.renderText("text");
            if (text !== want) throw new Error(`page\n${text}\nvs afresh\n${want}`);
            open.push({ ...page, text });
          } else if (open.length > 0) {
            const [page] = open.splice(s.which % open.length, 1);
            const now = Buffer.concat(page!.parts).toString();
            if (now !== page!.text) throw new Error(`an open page's parts changed:\n${page!.text}\nnow\n${now}`);
            page!.done();
          }
        }
        for (const page of open) if (Buffer.concat(page.parts).toString() !== page.text) throw new Error("an open page's parts changed");
      },
    ),
    { numRuns: 300 },
  );
});
