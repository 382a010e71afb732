import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import fc from "fast-check";
import t from "tap";
import { BatchSchema, Codec, FrameKind, FrameSchema, UpSchema, type Frame } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { frameProblem } from "../../../src/wire/frame-envelope.js";
import { FrameQueue, frameWireBytes } from "../../../src/wire/frame-queue.js";
import { decodeUp } from "../../../src/wire/uplink-grpc.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";

const frame = (origin: string, seq: number, kind: FrameKind, bytes: number): Frame =>
  create(FrameSchema, { origin, epoch: 1n, seq: BigInt(seq), timeMs: 1n, kind, codec: Codec.MSGPACK, payload: new Uint8Array(bytes) });

t.test("frame queue - a batch never exceeds its byte budget, frames keep their order, and one that can never fit is dropped and reported", async () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ bytes: fc.integer({ min: 1, max: 5000 }), key: fc.boolean() }), { minLength: 1, maxLength: 200 }),
      fc.integer({ min: 200, max: 20_000 }),
      fc.integer({ min: 1, max: 50 }),
      fc.integer({ min: 0, max: 5 }),
      (spec, budget, maxItems, requeueAfter) => {
        const reported: string[] = [];
        const q = new FrameQueue(10_000, ({ origins }) => reported.push(...origins));
        const frames = spec.map((s, k) => frame(`n${k}`, k + 1, s.key ? FrameKind.KEY : FrameKind.DELTA, s.bytes));
        q.push(frames, []);
        const out: Frame[] = [];
        let batches = 0;
        while (!q.isEmpty) {
          const b = q.take(maxItems, budget);
          const size = b.frames.reduce((n, f) => n + frameWireBytes(f), 0);
          if (size > budget) throw new Error(`a batch of ${size} bytes over the budget ${budget}`);
          if (b.frames.length > maxItems) throw new Error("too many frames in a batch");
          // A link that fails once: the batch comes back and must be split again the same way.
          if (++batches === requeueAfter) q.requeue(b.frames);
          else out.push(...b.frames);
        }
        const fits = frames.filter((f) => frameWireBytes(f) <= budget);
        if (out.map((f) => f.origin).join() !== fits.map((f) => f.origin).join()) throw new Error("frames lost or reordered");
        const tooBig = frames.filter((f) => frameWireBytes(f) > budget).map((f) => f.origin);
        if (reported.sort().join() !== tooBig.sort().join()) throw new Error(`reported ${reported} for ${tooBig}`);
        if (q.queuedBytes !== 0) throw new Error(`${q.queuedBytes} bytes counted in an empty queue`);
      },
    ),
    { numRuns: 300, seed: 5 },
  );
});

t.test("frame queue - past its byte bound it sheds the oldest deltas first and reports their origins", async (t) => {
  const reported: string[][] = [];
  const one = frameWireBytes(frame("a", 1, FrameKind.DELTA, 1000));
  const q = new FrameQueue(1000, ({ origins }) => reported.push(origins), 3 * one);
  q.push([frame("a", 1, FrameKind.KEY, 1000), frame("b", 1, FrameKind.DELTA, 1000), frame("c", 1, FrameKind.VALUES, 1000)], []);
  t.equal(reported.length, 0);
  q.push([frame("d", 1, FrameKind.KEY, 1000)], []);
  t.same(reported, [["b"]], "the oldest delta goes, the keyframes stay");
  t.ok(q.queuedBytes <= 3 * one, "back under the bound");
  q.push([frame("e", 1, FrameKind.KEY, 1000), frame("f", 1, FrameKind.KEY, 1000)], []);
  t.same(reported[1]!.sort(), ["a", "c"], "then the other values frame, then the oldest keyframe");
  t.equal(q.length, 3);
});

t.test("frame queue - past its frame bound the oldest deltas go first, keyframes stay, then the oldest keyframes; the origins are reported", async (t) => {
  const reported: string[][] = [];
  const q = new FrameQueue(5, ({ origins }) => reported.push(origins));
  q.push([frame("a", 1, FrameKind.KEY, 1), frame("b", 1, FrameKind.KEY, 1), frame("a", 2, FrameKind.DELTA, 1), frame("b", 2, FrameKind.DELTA, 1)], []);
  t.equal(reported.length, 0);
  q.push([frame("c", 1, FrameKind.KEY, 1), frame("a", 3, FrameKind.DELTA, 1), frame("c", 2, FrameKind.DELTA, 1)], []);
  t.same(reported, [["a", "b"]], "the two oldest deltas (of a and b) were dropped and reported");
  q.push([frame("d", 1, FrameKind.KEY, 1), frame("e", 1, FrameKind.KEY, 1), frame("f", 1, FrameKind.KEY, 1), frame("g", 1, FrameKind.KEY, 1)], []);
  t.same(reported[1]!.sort(), ["a", "b", "c"], "deltas go before any keyframe, then the oldest keyframes");
  t.equal(q.length, 5);
});

t.test("frame queue - what a child sends beyond the protocol's fields is dropped as it is read, and the byte estimate bounds every frame that passes in its batch", async (t) => {
  const u64 = fc.oneof({ arbitrary: fc.constant(0n), weight: 1 }, { arbitrary: fc.constant(2n ** 64n - 1n), weight: 3 }, { arbitrary: fc.bigInt({ min: 1n, max: 2n ** 64n - 1n }), weight: 6 });
  const i64 = fc.oneof(fc.constant(-(2n ** 63n)), fc.constant(2n ** 63n - 1n), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }));
  const unknown = fc.array(fc.record({ no: fc.integer({ min: 8, max: 5000 }), data: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 4 });
  const aFrame = fc.record({
    origin: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,254}$/),
    epoch: u64,
    seq: u64,
    timeMs: i64,
    kind: fc.constantFrom(FrameKind.KEY, FrameKind.DELTA, FrameKind.VALUES, FrameKind.EVENTS, FrameKind.LEAVE),
    codec: fc.oneof(fc.constantFrom(Codec.MSGPACK, Codec.MSGPACK_LZ4), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })),
    payload: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 3 * 2 ** 20 }).map((n) => new Uint8Array(n))),
    unknown,
  });
  let passed = 0;
  fc.assert(
    fc.property(fc.array(aFrame, { minLength: 1, maxLength: 3 }), (specs) => {
      const frames = specs.map(({ unknown: extra, ...f }) => {
        const frame = create(FrameSchema, f as Partial<Frame>);
        frame.$unknown = extra.map((x) => ({ no: x.no, wireType: WireType.LengthDelimited, data: new BinaryWriter().bytes(x.data).finish() }));
        return frame;
      });
      const sent = Buffer.from(toBinary(UpSchema, create(UpSchema, { msg: { case: "batch", value: { linkSeq: 1n, frames, alive: [] } } })));
      const got = decodeUp(sent);
      if (got.msg.case !== "batch") throw new Error("not a batch");
      for (const f of got.msg.value.frames) {
        t.equal(f.$unknown?.length ?? 0, 0, "no unknown field kept");
        if (frameProblem(f, DEFAULT_WIRE_LIMITS) !== null) continue;
        passed++;
        const inBatch = toBinary(BatchSchema, create(BatchSchema, { frames: [f] })).length;
        if (inBatch > frameWireBytes(f)) t.fail(`${inBatch} bytes in a batch over the estimate ${frameWireBytes(f)}: ${JSON.stringify({ ...f, payload: f.payload.length }, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v))}`);
      }
    }),
    { numRuns: 300 },
  );
  t.ok(passed > 100, `${passed} frames passed the envelope and were measured`);
  // The worst frame that passes: every 64-bit field at its longest, the longest name, the largest payload.
  const worst = create(FrameSchema, { origin: "n".repeat(DEFAULT_WIRE_LIMITS.maxNameLength), epoch: 2n ** 64n - 1n, seq: 2n ** 64n - 1n, timeMs: -(2n ** 63n), kind: FrameKind.KEY, codec: Codec.MSGPACK_LZ4, payload: new Uint8Array(DEFAULT_WIRE_LIMITS.maxDecompressedBytes) });
  t.equal(frameProblem(worst, DEFAULT_WIRE_LIMITS), null);
  t.equal(toBinary(BatchSchema, create(BatchSchema, { frames: [worst] })).length, frameWireBytes(worst), "the estimate is exact for the worst frame");
});
