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
import { encodePayload } from "../../../../src/wire/payload-codec.js";
import { DEFAULT_WIRE_LIMITS } from "../../../../src/wire/wire-limits.js";

/** A root store on a test clock; `sliceMs: 0` slices at every chance (after each keyframe, every 32 frames). */
function newStore(sliceMs?: number, maxMessageBytes?: number) {
  const registry = new Registry();
  const clock = { now: 1_000_000 };
  const store = new RootStore(
    { deadAfterMs: 3000, forgetAfterMs: 600_000, intervalMs: 1000, resyncIntervalMs: 1000, keyframeIntervalMs: 60_000, resyncPerS: 1000, resyncBurst: 100, limits: { ...DEFAULT_WIRE_LIMITS, ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}) }, clock: () => clock.now, ...(sliceMs !== undefined ? { sliceMs } : {}) },
    new AggregateEngine([]),
    silentLogger(),
    registry,
  );
  store.connectDownlink({ resync: () => undefined });
  return { store, registry, clock };
}

/** Until nothing waits to be applied (a turn of the loop at a time). */
async function drained(store: RootStore): Promise<void> {
  while (store.inputWaiting > 0) await new Promise((r) => setImmediate(r));
}

/** Nodes of `series` gauges each; a tick moves the values the seed picks. */
function nodes(count: number, series: number) {
  const all = Array.from({ length: count }, (_, k) => {
    const enc = new DeltaEncoder();
    const ids = Array.from({ length: series }, (_, j) => enc.define(seriesDef("node_load1", { cpu: String(j) }, SeriesType.Gauge)));
    return { name: `n${k}`, enc, ids, seq: 0n };
  });
  const frame = (k: number, move: (j: number) => number, sampledMs: number): Frame | null => {
    const n = all[k]!;
    for (let j = 0; j < series; j++) n.enc.set(n.ids[j]!, move(j));
    const f = n.enc.encode();
    if (f === null) return null;
    const w = encodePayload(f.payload);
    n.seq++;
    return create(FrameSchema, { origin: n.name, epoch: 1n, seq: n.seq, timeMs: BigInt(sampledMs), kind: f.kind === "key" ? FrameKind.KEY : FrameKind.DELTA, codec: w.codec, payload: w.bytes });
  };
  return { all, frame };
}

t.test("sliced ingest - batches taken in slices end as the same state as taken whole, in arrival order", async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 2, max: 6 }),
      // Each batch: which nodes send, and a seed for their values.
      fc.array(fc.record({ senders: fc.array(fc.nat(5), { minLength: 1, maxLength: 40 }), seed: fc.nat(1000), link: fc.nat(2) }), { minLength: 1, maxLength: 12 }),
      async (count, batches) => {
        const whole = newStore();
        const sliced = newStore(0);
        const src = nodes(count, 20);
        const links = [{}, {}, {}];
        let deferred = 0;
        for (const [b, batch] of batches.entries()) {
          const frames: Frame[] = [];
          for (const s of batch.senders) {
            const f = src.frame(s % count, (j) => ((batch.seed + 7 * j + b) % 13) * 10, whole.clock.now);
            if (f !== null) frames.push(f);
          }
          whole.store.accept(frames, [], links[batch.link]);
          await sliced.store.acceptSliced(frames, [], links[batch.link]);
          if (sliced.store.inputWaiting > 0) deferred++;
        }
        await drained(sliced.store);
        if (deferred === 0 && batches.some((b) => b.senders.length > 32)) return false;
        for (const n of src.all) {
          const a = whole.store.origin(n.name);
          const b = sliced.store.origin(n.name);
          if ((a === undefined) !== (b === undefined)) return false;
          if (a === undefined || b === undefined) continue;
          if (a.seq !== b.seq || a.up !== b.up) return false;
          for (const id of n.ids) if (!Object.is(a.value(id), b.value(id))) return false;
        }
        return whole.store.cache.renderText("text") === sliced.store.cache.renderText("text");
      },
    ),
    { numRuns: 60 },
  );
  t.pass("equal over random batches");
});

t.test("sliced ingest - a batch over the slice is acked at once and applied in later slices; past the byte bound its link waits", async (t) => {
  const { store } = newStore(0);
  const src = nodes(40, 50);
  const frames = src.all.map((_, k) => src.frame(k, (j) => j, 1_000_000)!);
  t.equal(store.acceptSliced(frames, [], {}), undefined, "under the bound: no wait asked of the link");
  const early = [...store.originStates].length;
  t.ok(early < 40, `some frames wait for a later slice (${early} of 40 applied at once)`);
  t.equal(store.inputWaiting, 1, "the rest of the batch waits");
  await drained(store);
  t.equal([...store.originStates].filter((s) => s.up).length, 40, "every node applied and up after a few turns of the loop");

  // 4 × maxMessageBytes is the bound on what waits: 40 keyframes of 50 series are over 4 × 2 KB.
  const small = newStore(0, 2048);
  const more = nodes(40, 50);
  const busy = small.store.acceptSliced(more.all.map((_, k) => more.frame(k, (j) => j, 1_000_000)!), [], {});
  t.ok(busy !== undefined, "past the bound: the link is asked to wait");
  await busy;
  t.equal([...small.store.originStates].filter((s) => s.up).length, 40, "and the promise settles once the batch is applied");
});

t.test("taking nodes down in slices - a node heard again before its turn stays up", async (t) => {
  const { store, registry, clock } = newStore(0);
  const src = nodes(6, 5);
  const link = {};
  store.accept(src.all.map((_, k) => src.frame(k, (j) => j, clock.now)!), [], link);
  // Every node silent past deadAfterMs: the sweep finds all six, and with a 0 ms slice takes one down at once.
  for (let k = 0; k < 6; k++) {
    clock.now += 750;
    store.sweep(clock.now);
  }
  const downNow = [...store.originStates].filter((s) => !s.up).length;
  t.ok(downNow >= 1 && downNow < 6, `a slice at a time (${downNow} of 6 down at once)`);
  const still = src.all.map((n) => n.name).filter((n) => store.origin(n)!.up);
  const heard = still[still.length - 1]!;
  const k = src.all.findIndex((n) => n.name === heard);
  store.accept([src.frame(k, (j) => j + 1, clock.now)!], [], link);
  // One node a slice, each slice a turn of the loop: six turns take every one that is going down.
  for (let k = 0; k < 12; k++) await new Promise((r) => setImmediate(r));
  t.ok(store.origin(heard)!.up, "the node heard again stays up");
  t.equal([...store.originStates].filter((s) => !s.up).length, 5, "the five silent ones are down");
  const downs = (await registry.getSingleMetric("banyan_root_nodes_down_total")!.get()).values[0]!.value;
  t.equal(downs, 5, "and counted five times, not six");
  store.stop();
});

t.test("sliced ingest - nodes whose frames wait to be applied are not taken for silent (the input backlog extends the deadline)", async (t) => {
  const { store, registry, clock } = newStore(0);
  const src = nodes(7, 5);
  const link = {};
  store.accept(src.all.slice(0, 6).map((_, k) => src.frame(k, (j) => j, clock.now)!), [], link);
  clock.now += 2000;
  // A keyframe first (a node joining): with a 0 ms slice the six deltas behind it wait for a later turn.
  const batch = [src.frame(6, (j) => j, clock.now)!, ...src.all.slice(0, 6).map((_, k) => src.frame(k, (j) => j + 1, clock.now)!)];
  store.acceptSliced(batch, [], link);
  t.equal(store.inputWaiting, 1, "the deltas wait");
  // The loop stays busy elsewhere for 3.75 s; the sweeps run on time (none stalled) and see the queue.
  for (let k = 0; k < 5; k++) {
    clock.now += 750;
    store.sweep(clock.now);
  }
  for (let k = 0; k < 12; k++) await new Promise((r) => setImmediate(r));
  const downs = (await registry.getSingleMetric("banyan_root_nodes_down_total")!.get()).values[0]!.value;
  t.equal(downs, 0, "nobody marked down while their frames waited");
  t.equal([...store.originStates].filter((s) => s.up).length, 7, "all seven up once applied");
  store.stop();
});
