import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../../src/core/logger.js";
import { FrameKind, FrameSchema, type Frame } from "../../../../src/gen/banyan/v1/uplink_pb.js";
import { AggregateEngine } from "../../../../src/root/ingest/aggregates.js";
import { RootStore } from "../../../../src/root/ingest/root-store.js";
import { DeltaEncoder } from "../../../../src/series/delta-encoder.js";
import { SeriesType, seriesDef } from "../../../../src/series/series-def.js";
import { aliveRecord } from "../../../../src/wire/frame-flow.js";
import { encodePayload } from "../../../../src/wire/payload-codec.js";
import { DEFAULT_WIRE_LIMITS } from "../../../../src/wire/wire-limits.js";

/** A root store on a clock the test moves, and nodes that send through links the test names. */
function setup(opts: { resyncPerS?: number; keyframeIntervalMs?: number } = {}) {
  let now = 1_000_000;
  const registry = new Registry();
  const resyncs: string[] = [];
  const store = new RootStore(
    {
      deadAfterMs: 3000,
      forgetAfterMs: 600_000,
      intervalMs: 1000,
      resyncIntervalMs: 1000,
      keyframeIntervalMs: opts.keyframeIntervalMs ?? 60_000,
      resyncPerS: opts.resyncPerS ?? 1000,
      resyncBurst: 100,
      limits: DEFAULT_WIRE_LIMITS,
      clock: () => now,
    },
    new AggregateEngine([]),
    silentLogger(),
    registry,
  );
  store.connectDownlink({ resync: (o) => resyncs.push(...o) });
  const nodes = new Map<string, { enc: DeltaEncoder; id: number; seq: bigint; epoch: bigint; flip: boolean }>();
  const frameOf = (name: string, sampledMs: number): Frame => {
    let n = nodes.get(name);
    if (n === undefined) {
      const enc = new DeltaEncoder();
      n = { enc, id: enc.define(seriesDef("node_load1", {}, SeriesType.Gauge)), seq: 0n, epoch: 1n, flip: false };
      nodes.set(name, n);
    }
    n.seq++;
    n.flip = !n.flip;
    n.enc.set(n.id, n.flip ? 1 : 1000); // always past the 1 % bound: every tick sends a frame
    const f = n.enc.encode()!;
    const w = encodePayload(f.payload);
    return create(FrameSchema, { origin: name, epoch: n.epoch, seq: n.seq, timeMs: BigInt(sampledMs), kind: f.kind === "key" ? FrameKind.KEY : FrameKind.DELTA, codec: w.codec, payload: w.bytes });
  };
  // The sweep expects to run every deadAfterMs / 4: a test that moves time in bigger steps sweeps in between.
  const advance = (ms: number): void => {
    const target = now + ms;
    while (now < target) {
      now = Math.min(target, now + 750);
      store.sweep(now);
    }
  };
  const up = (name: string): boolean => store.origin(name)?.up === true;
  return { store, registry, resyncs, frameOf, advance, up, clock: { get now() { return now; }, set now(v: number) { now = v; } }, nodes };
}

t.test("liveness - a congested link delivers old samples late: nobody behind it is marked down", async (t) => {
  const s = setup();
  const congested = {};
  const healthy = {};
  for (const n of ["a", "b"]) s.store.accept([s.frameOf(n, s.clock.now)], [], congested);
  s.store.accept([s.frameOf("c", s.clock.now)], [], healthy);
  t.ok(s.up("a") && s.up("b") && s.up("c"));
  // For 10 s the congested link delivers a frame a second, each sampled only 100 ms after the one before.
  const started = s.clock.now;
  for (let k = 1; k <= 10; k++) {
    s.advance(1000);
    s.store.accept([], [aliveRecord("c", 1n, 1n, s.clock.now)], healthy);
    s.store.accept([s.frameOf("a", started + k * 100)], [], congested);
  }
  t.ok(s.up("a"), "a: delivered late, not down");
  t.ok(s.up("b"), "b: silent by arrival for 10 s, but as recent as anything its link delivered: not down");
  t.ok(s.up("c"));
});

t.test("liveness - a node silent while its link delivers newer samples of others is marked down; a link that delivers nothing takes its nodes down", async (t) => {
  const s = setup();
  const link = {};
  const other = {};
  s.store.accept([s.frameOf("a", s.clock.now), s.frameOf("b", s.clock.now)], [], link);
  s.store.accept([s.frameOf("x", s.clock.now)], [], other);
  for (let k = 0; k < 5; k++) {
    s.advance(1000);
    s.store.accept([s.frameOf("a", s.clock.now)], [], link);
  }
  t.ok(s.up("a"));
  t.notOk(s.up("b"), "b went silent while a, behind the same link, kept coming: down");
  t.notOk(s.up("x"), "x's link delivered nothing for 5 s: down");
  const downs = (await s.registry.getSingleMetric("banyan_root_nodes_down_total")!.get()).values[0]!.value;
  t.equal(downs, 2, "two nodes marked down, counted");
});

t.test("liveness - an event loop held up past deadAfterMs marks nobody down, and that time is nobody's silence", async (t) => {
  const s = setup();
  s.store.accept([s.frameOf("a", s.clock.now)], [], {});
  s.advance(750);
  s.clock.now += 5000; // a 5 s pause: the sweep timer fires late
  s.store.sweep(s.clock.now);
  t.ok(s.up("a"), "the late sweep marks nobody down");
  s.clock.now += 750;
  s.store.sweep(s.clock.now);
  t.ok(s.up("a"), "the 5 s the root was deaf do not count against a");
  const stalled = (await s.registry.getSingleMetric("banyan_root_sweeps_stalled_total")!.get()).values[0]!.value;
  t.equal(stalled, 1);
});

t.test("resync - an origin that keeps needing keyframes is asked at most about once per keyframe interval", async () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 60, maxLength: 400 }), (gaps) => {
      const K = 20_000;
      const s = setup({ keyframeIntervalMs: K });
      const link = {};
      s.store.accept([s.frameOf("n1", s.clock.now)], [], link);
      const n = s.nodes.get("n1")!;
      let keys = 0;
      for (const g of gaps) {
        s.clock.now += 500;
        s.store.sendResyncs(s.clock.now);
        if (s.resyncs.length > 0) {
          // The node answers every request with a keyframe on its next tick.
          s.resyncs.length = 0;
          n.enc.requestKeyframe("key");
          s.store.accept([s.frameOf("n1", s.clock.now)], [], link);
          keys++;
        } else {
          // g frames lost on the way: the next one shows a gap, which needs a keyframe.
          n.seq += BigInt(g);
          s.store.accept([s.frameOf("n1", s.clock.now)], [], link);
        }
      }
      const spanMs = gaps.length * 500;
      // Backing off from resyncIntervalMs (1 s) doubling up to K: at most log2(K / 1 s) + 1 quick ones, then one per K.
      const bound = Math.ceil(spanMs / K) + Math.ceil(Math.log2(K / 1000)) + 2;
      if (keys > bound) throw new Error(`${keys} keyframes asked in ${spanMs} ms (bound ${bound})`);
    }),
    { numRuns: 100, seed: 9 },
  );
});

t.test("reorder - frames that arrive out of order (a relay failed over from a slow parent) all apply, with no keyframe asked; a gap never filled asks for one", async () => {
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 60 }), fc.integer({ min: 1, max: 7 }), fc.integer({ min: 0, max: 2 ** 31 }), (count, window, seed) => {
      const s = setup();
      const link = {};
      s.store.accept([s.frameOf("n1", s.clock.now)], [], link);
      // The next `count` frames, shuffled within windows of `window` (what two paths do to one stream).
      const frames = Array.from({ length: count }, () => s.frameOf("n1", s.clock.now));
      let r = seed;
      for (let b = 0; b < frames.length; b += window) {
        for (let k = Math.min(frames.length, b + window) - 1; k > b; k--) {
          r = (Math.imul(r, 1103515245) + 12345) >>> 0;
          const j = b + (r % (k - b + 1));
          [frames[k], frames[j]] = [frames[j]!, frames[k]!];
        }
      }
      for (const f of frames) {
        s.clock.now += 10;
        s.store.accept([f], [], link);
      }
      s.advance(5000);
      s.store.sendResyncs(s.clock.now);
      const st = s.store.origin("n1")!;
      if (st.seq !== BigInt(count + 1)) throw new Error(`applied up to ${st.seq} of ${count + 1}`);
      if (s.resyncs.length > 0) throw new Error(`asked for a keyframe: ${s.resyncs}`);
    }),
    { numRuns: 200, seed: 21 },
  );
  const s = setup();
  const link = {};
  s.store.accept([s.frameOf("n2", s.clock.now)], [], link);
  s.frameOf("n2", s.clock.now); // lost on the way
  s.store.accept([s.frameOf("n2", s.clock.now)], [], link);
  s.advance(1500);
  s.store.sendResyncs(s.clock.now);
  if (s.resyncs.length > 0) throw new Error("asked for a keyframe while the gap may still fill (held 3 × interval)");
  s.advance(2000);
  s.store.sendResyncs(s.clock.now);
  if (!s.resyncs.includes("n2")) throw new Error("a gap that stayed open did not ask for a keyframe");
});
