import fc from "fast-check";
import t from "tap";
import { decodeDecimal, exactDecimal, roundedDecimal } from "../../../src/series/decimal.js";
import { DeltaDecoder } from "../../../src/series/delta-decoder.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { PrecisionRules } from "../../../src/series/precision.js";
import { SeriesType, seriesDef } from "../../../src/series/series-def.js";
import { decodePayload, encodePayload } from "../../../src/wire/payload-codec.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";

/** One frame through the real wire codec (msgpack, lz4 when smaller) into the decoder. */
function roundTrip(enc: DeltaEncoder, dec: DeltaDecoder): boolean {
  const f = enc.encode();
  if (f === null) return false;
  const wire = encodePayload(f.payload);
  dec.apply(decodePayload(wire.codec, wire.bytes, DEFAULT_WIRE_LIMITS), f.kind);
  return true;
}

const special = fc.constantFrom(NaN, Infinity, -Infinity, -0, 0, 1e308, -1e308, 5e-324, 1e-300, 2 ** 53, 0.1 + 0.2);
const gaugeValue = fc.oneof({ weight: 8, arbitrary: fc.double({ min: -1e12, max: 1e12, noNaN: true }) }, { weight: 2, arbitrary: special });

const bound = (v: number, p: number, a: number): number => Math.max(p * Math.abs(v), a);
const sameSpecial = (x: number, y: number): boolean => (Number.isNaN(x) && Number.isNaN(y)) || x === y;

t.test("encoder - a gauge at the root stays within max(p·|v|, a) of the truth, specials exact", async (t) => {
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 0.2, noNaN: true }),
      fc.double({ min: 0, max: 100, noNaN: true }),
      fc.array(fc.array(gaugeValue, { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 40 }),
      fc.integer({ min: 0, max: 10 }),
      (p, a, ticks, keyEvery) => {
        const enc = new DeltaEncoder(new PrecisionRules([{ match: "g_*", relative: p, absolute: a }]));
        const dec = new DeltaDecoder();
        const ids = [0, 1, 2, 3].map((k) => enc.define(seriesDef(`g_${k}`, { k: String(k) }, SeriesType.Gauge)));
        ticks.forEach((values, tick) => {
          // Full keyframes and values-only (periodic) ones alternate.
          if (keyEvery > 0 && tick % keyEvery === 0) enc.requestKeyframe(tick % (2 * keyEvery) === 0 ? "key" : "values");
          ids.forEach((id, k) => enc.set(id, values[k]!));
          roundTrip(enc, dec);
          ids.forEach((id, k) => {
            const v = values[k]!;
            const got = dec.value(id);
            if (!Number.isFinite(v)) {
              if (!sameSpecial(got, v)) throw new Error(`tick ${tick}: special ${v} arrived as ${got}`);
            } else if (!(Math.abs(got - v) <= bound(v, p, a))) {
              throw new Error(`tick ${tick}: ${got} vs ${v}, bound ${bound(v, p, a)}`);
            }
            if (got !== enc.heldValue(id) && !(Number.isNaN(got) && Number.isNaN(enc.heldValue(id)))) throw new Error("encoder's mirror differs from the root");
          });
        });
      },
    ),
    { numRuns: 300, seed: 42 },
  );
});

t.test("encoder - counters never go backwards, never run ahead, keep rate, and are exact after a keyframe", async (t) => {
  const increments = fc.array(
    fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 1_000_000 }), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
    { minLength: 2, maxLength: 60 },
  );
  fc.assert(
    fc.property(fc.constantFrom(0, 0, 0.001, 0.01, 0.1), fc.double({ min: 0, max: 1e9, noNaN: true }), increments, fc.integer({ min: 0, max: 12 }), (p, start, incs, keyEvery) => {
      const rules = new PrecisionRules(p > 0 ? [{ match: "c_total", relative: p, absolute: 0 }] : []);
      const enc = new DeltaEncoder(rules);
      const dec = new DeltaDecoder();
      const id = enc.define(seriesDef("c_total", {}, SeriesType.Counter));
      let truth = start;
      let prevGot = -Infinity;
      let prevTruth = truth;
      incs.forEach((inc, tick) => {
        truth += inc;
        const key = keyEvery > 0 && tick % keyEvery === 0;
        if (key) enc.requestKeyframe(tick % (2 * keyEvery) === 0 ? "key" : "values");
        enc.set(id, truth);
        roundTrip(enc, dec);
        const got = dec.value(id);
        if (got < prevGot) throw new Error(`tick ${tick}: went backwards ${prevGot} → ${got}`);
        if (got > truth) throw new Error(`tick ${tick}: ahead of the truth ${got} > ${truth}`);
        if (truth - got > bound(truth, p, 0)) throw new Error(`tick ${tick}: ${got} behind ${truth} past the bound`);
        if ((p === 0 || key || tick === 0) && got !== truth) throw new Error(`tick ${tick}: not exact (${got} vs ${truth})`);
        // Rate over the window since the previous tick agrees within the bound at both ends.
        if (tick > 0 && Math.abs(got - prevGot - (truth - prevTruth)) > bound(truth, p, 0) + bound(prevTruth, p, 0)) throw new Error("rate");
        prevGot = got;
        prevTruth = truth;
      });
    }),
    { numRuns: 300, seed: 7 },
  );
});

t.test("encoder - a counter reset travels exactly and at once", async (t) => {
  const enc = new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0.05, absolute: 0 }]));
  const dec = new DeltaDecoder();
  const id = enc.define(seriesDef("restarts_total", {}, SeriesType.Counter));
  for (const v of [1000, 1010, 1020, 3]) {
    enc.set(id, v);
    roundTrip(enc, dec);
  }
  t.equal(dec.value(id), 3, "1020 → 3 is a reset: it travels exactly although 5 % precision is allowed");
  for (const v of [4]) {
    enc.set(id, v);
    roundTrip(enc, dec);
  }
  t.ok(Math.abs(dec.value(id) - 4) <= 0.05 * 4, `after the reset the counter tracks 4 within its bound (${dec.value(id)})`);
  enc.set(id, 2);
  roundTrip(enc, dec);
  t.equal(dec.value(id), 2, "a decrease is a reset: exact");
});

t.test("encoder - histogram buckets never exceed _count at the root, whatever the precision rules", async (t) => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.integer({ min: 0, max: 500 }), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 30 }), (ticks) => {
      const enc = new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0.2, absolute: 50 }]));
      const dec = new DeltaDecoder();
      const le = ["0.1", "1", "10", "+Inf"];
      const buckets = le.map((l) => enc.define(seriesDef("lat_seconds_bucket", { le: l }, SeriesType.HistogramPart)));
      const count = enc.define(seriesDef("lat_seconds_count", {}, SeriesType.HistogramPart));
      const sum = enc.define(seriesDef("lat_seconds_sum", {}, SeriesType.HistogramPart));
      const acc = [0, 0, 0, 0];
      let s = 0;
      for (const obs of ticks) {
        let cum = 0;
        obs.forEach((n, k) => {
          cum += n;
          acc[k]! += cum;
        });
        s += obs[0]! * 0.05 + obs[1]! * 0.5;
        buckets.forEach((id, k) => enc.set(id, acc[k]!));
        enc.set(count, acc[3]!);
        enc.set(sum, s);
        roundTrip(enc, dec);
        for (const id of buckets) if (dec.value(id) > dec.value(count)) throw new Error("bucket over _count");
        if (dec.value(count) !== acc[3]) throw new Error("_count not exact");
      }
    }),
    { numRuns: 100, seed: 3 },
  );
  t.equal(seriesDef("lat_seconds_bucket", { le: "1" }, SeriesType.HistogramPart).family, "lat_seconds");
});

t.test("encoder - nothing changed, nothing sent; series come and go between keyframes", async (t) => {
  const enc = new DeltaEncoder();
  const dec = new DeltaDecoder();
  const a = enc.define(seriesDef("up_a", {}, SeriesType.Gauge));
  enc.set(a, 1);
  t.equal(roundTrip(enc, dec), true, "first frame is a keyframe");
  enc.set(a, 1.005);
  t.equal(roundTrip(enc, dec), false, "inside 1 %: nothing to send");
  t.equal(enc.define(seriesDef("up_a", {}, SeriesType.Gauge)), a, "define is idempotent");
  const b = enc.define(seriesDef("up_b", { job: "x" }, SeriesType.Gauge, { help: "b help" }));
  enc.set(b, 7);
  t.equal(roundTrip(enc, dec), true);
  t.equal(dec.def(b)!.help, "b help");
  t.same(dec.def(b)!.labels, [["job", "x"]]);
  t.equal(dec.value(b), 7);
  enc.remove(a);
  roundTrip(enc, dec);
  t.equal(dec.def(a), undefined, "removed at the root");
  t.equal(dec.size, 1);
  const c = enc.define(seriesDef("up_c", {}, SeriesType.Counter));
  t.equal(c, a, "ids are reused");
  enc.set(c, 5);
  enc.remove(b);
  roundTrip(enc, dec);
  t.equal(dec.def(c)!.name, "up_c");
  t.equal(dec.value(c), 5);
  t.equal(dec.size, 1);
  const d = enc.define(seriesDef("never_sent", {}, SeriesType.Gauge));
  enc.remove(d);
  t.equal(roundTrip(enc, dec), false, "a series defined and removed before any frame never travels");
  enc.requestKeyframe();
  t.equal(enc.keyframeDue, true);
  roundTrip(enc, dec);
  t.equal(dec.size, 1, "a keyframe restates exactly the live series");
});

t.test("decoder - series come and go at random: the root holds exactly the node's series, and a value for one it does not hold is refused", async (t) => {
  const op = fc.oneof(
    fc.record({ k: fc.constant("set" as const), id: fc.integer({ min: 0, max: 150 }), v: gaugeValue }),
    fc.record({ k: fc.constant("remove" as const), id: fc.integer({ min: 0, max: 150 }) }),
    fc.record({ k: fc.constant("tick" as const), key: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 300 }), (ops) => {
      const enc = new DeltaEncoder(new PrecisionRules([], { relative: 0, absolute: 0 }));
      const dec = new DeltaDecoder();
      const truth = new Map<number, number>();
      const ids = new Map<number, number>();
      const check = (): void => {
        t.equal(dec.size, ids.size);
        for (const [name, id] of ids) {
          t.equal(dec.def(id)?.name, `s_${name}`);
          if (truth.has(name)) t.ok(sameSpecial(dec.value(id), truth.get(name)!), `s_${name}`);
        }
      };
      for (const o of [...ops, { k: "tick" as const, key: false }]) {
        if (o.k === "set") {
          let id = ids.get(o.id);
          if (id === undefined) ids.set(o.id, (id = enc.define(seriesDef(`s_${o.id}`, {}, SeriesType.Gauge))));
          enc.set(id, o.v);
          truth.set(o.id, o.v);
        } else if (o.k === "remove") {
          const id = ids.get(o.id);
          if (id === undefined) continue;
          enc.remove(id);
          ids.delete(o.id);
          truth.delete(o.id);
        } else {
          if (o.key) enc.requestKeyframe(dec.size > 0 ? "values" : "key");
          roundTrip(enc, dec);
          if (dec.capacity > 0) check();
        }
      }
      // A DELTA frame naming a series the root does not hold: refused whole, nothing changed.
      const held = [...ids.values()];
      const missing = Array.from({ length: 200 }, (_, k) => k).find((k) => dec.def(k) === undefined)!;
      const before = held.map((id) => dec.value(id));
      const gaps = [...held.filter((id) => id < missing), missing].sort((a, b) => a - b).map((id, k, all) => (k === 0 ? id : id - all[k - 1]! - 1));
      const p = { strings: [], defs: [], gone: [], ids: gaps, vals: gaps.map(() => 32 + 16), rawIds: [], rawVals: new Uint8Array() };
      t.throws(() => dec.apply(p, "delta"), /undefined series/);
      t.same(held.map((id) => dec.value(id)), before, "a refused frame changes nothing");
    }),
    { numRuns: 150 },
  );
});

t.test("encoder - ids are reused lowest first and stay under the limit; past it a series is refused (-1), never sent", async (t) => {
  const limits = { ...DEFAULT_WIRE_LIMITS, maxSeriesPerOrigin: 40 };
  const op = fc.oneof(
    { weight: 3, arbitrary: fc.record({ k: fc.constant("define" as const), name: fc.integer({ min: 0, max: 120 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("remove" as const), name: fc.integer({ min: 0, max: 120 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("tick" as const) }) },
  );
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 400 }), (ops) => {
      const enc = new DeltaEncoder(new PrecisionRules([], { relative: 0, absolute: 0 }), limits);
      const dec = new DeltaDecoder(limits);
      const ids = new Map<number, number>();
      const tick = (): void => {
        const f = enc.encode();
        if (f === null) return;
        const wire = encodePayload(f.payload);
        dec.apply(decodePayload(wire.codec, wire.bytes, limits), f.kind); // throws if an id is past the limit
      };
      for (const o of [...ops, { k: "tick" as const }]) {
        if (o.k === "define") {
          if (ids.has(o.name)) continue;
          const live = new Set(ids.values());
          const id = enc.define(seriesDef(`s_${o.name}`, {}, SeriesType.Gauge));
          if (live.size >= limits.maxSeriesPerOrigin) {
            t.equal(id, -1, "refused when full");
            enc.set(id, 1); // ignored
            continue;
          }
          // The lowest id not in use.
          let lowest = 0;
          while (live.has(lowest)) lowest++;
          if (id !== lowest) t.equal(id, lowest, "lowest free id");
          enc.set(id, o.name);
          ids.set(o.name, id);
        } else if (o.k === "remove") {
          const id = ids.get(o.name);
          if (id === undefined) continue;
          enc.remove(id);
          ids.delete(o.name);
        } else {
          tick();
        }
      }
      t.equal(dec.size, ids.size);
      for (const [name, id] of ids) if (dec.value(id) !== name) t.equal(dec.value(id), name);
    }),
    { numRuns: 100 },
  );
});

t.test("encoder - the string table is collected: label values that come and go never grow it past its bound", async (t) => {
  const limits = { ...DEFAULT_WIRE_LIMITS, maxStringChars: 4000, maxStrings: 300 };
  fc.assert(
    fc.property(fc.array(fc.string({ minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 400 }), (jobs) => {
      const enc = new DeltaEncoder(new PrecisionRules(), limits);
      const dec = new DeltaDecoder(limits);
      const stay = enc.define(seriesDef("node_up", {}, SeriesType.Gauge));
      enc.set(stay, 1);
      let keys = 0;
      let prev = -1;
      for (const job of jobs) {
        // A job's series: a fresh label value each time, gone at the next job.
        const id = enc.define(seriesDef("job_cpu", { job_id: job }, SeriesType.Gauge));
        enc.set(id, job.length);
        const f = enc.encode();
        if (f !== null) {
          if (f.kind === "key") keys++;
          const wire = encodePayload(f.payload);
          dec.apply(decodePayload(wire.codec, wire.bytes, limits), f.kind); // never over the bounds
        }
        if (prev >= 0 && prev !== id) enc.remove(prev);
        prev = id;
      }
      t.equal(dec.value(stay), 1);
      return keys >= 1;
    }),
    { numRuns: 60 },
  );
});

t.test("decoder - a string table past its characters' bound is refused, and a refused frame takes back every change to the tables", async (t) => {
  const limits = { ...DEFAULT_WIRE_LIMITS, maxStringChars: 100 };
  const dec = new DeltaDecoder(limits);
  // Key: series 0 = a{} and 1 = b{}.
  dec.apply({ strings: ["a", "b", ""], defs: [0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 2, 0], gone: [], ids: [0, 0], vals: [48, 48], rawIds: [], rawVals: new Uint8Array() }, "key");
  t.throws(() => dec.apply({ strings: ["x".repeat(99)], defs: [], gone: [], ids: [], vals: [], rawIds: [], rawVals: new Uint8Array() }, "delta"), /characters over the limit 100/);
  // Goes 0, defines 2 with a new string, then names series 5 that does not exist: all taken back.
  t.throws(
    () => dec.apply({ strings: ["c"], defs: [2, 3, 0, 3, 2, 0], gone: [0], ids: [5], vals: [48], rawIds: [], rawVals: new Uint8Array() }, "delta"),
    /undefined series 5/,
  );
  t.equal(dec.size, 2);
  t.equal(dec.def(0)?.name, "a", "the gone series is back");
  t.equal(dec.def(2), undefined, "the new one is not");
  // …and so are the flags a value is checked against: series 0 takes a value again, 2 does not.
  t.equal(dec.apply({ strings: [], defs: [], gone: [], ids: [0], vals: [48], rawIds: [], rawVals: new Uint8Array() }, "delta").changedCount, 1, "a value for the series that came back");
  t.throws(() => dec.apply({ strings: [], defs: [], gone: [], ids: [2], vals: [48], rawIds: [], rawVals: new Uint8Array() }, "delta"), /undefined series 2/);
  // A refused frame that defined a series past the cells held (they grew for it): not defined after.
  t.throws(() => dec.apply({ strings: ["d"], defs: [500, 3, 0, 3, 2, 0], gone: [], ids: [6], vals: [48], rawIds: [], rawVals: new Uint8Array() }, "delta"), /undefined series 6/);
  t.throws(() => dec.apply({ strings: [], defs: [], gone: [], ids: [500], vals: [48], rawIds: [], rawVals: new Uint8Array() }, "delta"), /undefined series 500/);
  // The string table is as it was: a frame referring to string 3 ("c" above) is refused.
  t.throws(() => dec.apply({ strings: [], defs: [2, 3, 0, 3, 2, 0], gone: [], ids: [], vals: [], rawIds: [], rawVals: new Uint8Array() }, "delta"), /string 3 of 3/);
  const ok = dec.apply({ strings: ["c"], defs: [2, 3, 0, 3, 2, 0], gone: [0], ids: [], vals: [], rawIds: [], rawVals: new Uint8Array() }, "delta");
  t.same([...ok.gone], [0]);
  t.equal(dec.def(2)?.name, "c");
  t.equal(dec.size, 2);
});

t.test("decoder - a keyframe may carry a series in both columns; it is counted once", async (t) => {
  const dec = new DeltaDecoder();
  const strings = ["a", "b"];
  const defs = [0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0];
  const raw = new Uint8Array(8);
  new DataView(raw.buffer).setFloat64(0, 2.5, true);
  const applied = dec.apply({ strings, defs, gone: [], ids: [0, 0], vals: [80, 144], rawIds: [1], rawVals: raw }, "key");
  t.equal(applied.changedCount, 3);
  t.equal(dec.value(0), 1);
  t.equal(dec.value(1), 2.5, "the raw column is written last");
  t.throws(() => dec.apply({ strings, defs, gone: [], ids: [0], vals: [48], rawIds: [0], rawVals: raw }, "key"), /carries 1 values for 2 series/);
});

t.test("decimal - exact values round-trip, rounded ones stay within tolerance", async (t) => {
  fc.assert(
    fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => {
      const p = exactDecimal(v);
      return p < 0 || Object.is(decodeDecimal(p), v);
    }),
    { numRuns: 2000, seed: 1 },
  );
  fc.assert(
    fc.property(fc.double({ min: -1e15, max: 1e15, noNaN: true }), fc.double({ min: 1e-12, max: 1e9, noNaN: true }), (v, tol) => {
      const p = roundedDecimal(v, tol);
      return p < 0 || Math.abs(decodeDecimal(p) - v) <= tol;
    }),
    { numRuns: 2000, seed: 2 },
  );
  for (const v of [0, 1, 12345.67, 1e15, 0.001, -42]) t.equal(decodeDecimal(exactDecimal(v)), v, `${v} exact`);
  for (const v of [NaN, Infinity, -0, 1 / 3]) t.equal(exactDecimal(v), -1, `${v} has no short decimal`);
});
