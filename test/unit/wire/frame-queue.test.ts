import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import t from "tap";
import { Codec, FrameKind, FrameSchema, type Frame } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { FrameQueue, frameWireBytes } from "../../../src/wire/frame-queue.js";

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
