import { create } from "@bufbuild/protobuf";
import t from "tap";
import { Codec, FrameKind, FrameSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { Handover } from "../../../src/wire/handover.js";
import type { ParentStream } from "../../../src/wire/parent-stream.js";

const frame = (origin: string, kind: FrameKind) => create(FrameSchema, { origin, epoch: 1n, seq: 1n, timeMs: 1n, kind, codec: Codec.MSGPACK, payload: new Uint8Array([1]) });

t.test("handover - the old stream is let go once the new path carried the node for handoverMs, and every keyframe the new root asked for went up", async (t) => {
  const h = new Handover({} as ParentStream, []);
  t.equal(h.due(10_000, 2000, true), false, "not while the new stream connects");
  h.readyAtMs = 0;
  t.equal(h.due(1999, 2000, true), false, "not before handoverMs");
  t.equal(h.due(2000, 2000, false), false, "not before the new parent acked");
  t.equal(h.due(2000, 2000, true), true, "a move within one root: after handoverMs");
  h.asked(["a", "b"]);
  t.equal(h.due(2000, 2000, true), false, "the new root asked keyframes of a and b: not yet");
  h.sent([frame("a", FrameKind.KEY), frame("b", FrameKind.DELTA)]);
  t.equal(h.awaiting, 1, "a's keyframe went up; a delta of b is no answer");
  t.equal(h.due(5000, 2000, true), false);
  h.sent([frame("b", FrameKind.KEY)]);
  t.equal(h.due(5000, 2000, true), true, "every keyframe went up: the old root may let them go");
  h.asked(["c"]);
  t.equal(h.due(19_999, 2000, true), false);
  t.equal(h.due(20_000, 2000, true), true, "a keyframe that never comes holds the old stream 10 × handoverMs at most");
});

t.test("handover - batches also go the old way until the new path acked and has every keyframe it asked for; never the node's own", async (t) => {
  const sent: string[][] = [];
  const old = { isOpen: true, writable: true, selfNode: "r", send: (frames: { origin: string }[]) => void sent.push(frames.map((f) => f.origin)) } as unknown as ParentStream;
  const h = new Handover(old, []);
  t.equal(h.mirroring(false), true, "until the new parent acked, the old way too");
  h.mirror([frame("r", FrameKind.KEY), frame("a", FrameKind.DELTA)], []);
  t.same(sent, [["a"]], "the node's own frames (its new epoch) stay off the old way");
  t.equal(h.mirroring(true), false, "a move within one root: acked, nothing asked, nothing sent twice");
  h.asked(["a"]);
  t.equal(h.mirroring(true), true, "the new root asked a keyframe: the old way carries a on meanwhile");
  h.sent([frame("a", FrameKind.KEY)]);
  t.equal(h.mirroring(true), false, "a's keyframe went up");
});
