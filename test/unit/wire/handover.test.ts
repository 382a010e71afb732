import { create } from "@bufbuild/protobuf";
import t from "tap";
import { Codec, FrameKind, FrameSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { Handover } from "../../../src/wire/handover.js";
import type { ParentStream } from "../../../src/wire/parent-stream.js";

const frame = (origin: string, kind: FrameKind) => create(FrameSchema, { origin, epoch: 1n, seq: 1n, timeMs: 1n, kind, codec: Codec.MSGPACK, payload: new Uint8Array([1]) });

/** An old stream that records what is sent on it, speaking for node "r". */
function oldStream(): { stream: ParentStream; sent: string[][] } {
  const sent: string[][] = [];
  const stream = { isOpen: true, writable: true, hasUnacked: false, selfNode: "r", send: (frames: { origin: string; kind: FrameKind }[]) => void sent.push(frames.map((f) => `${f.origin}${f.kind === FrameKind.LEAVE ? " leave" : ""}`)), close: () => undefined } as unknown as ParentStream;
  return { stream, sent };
}

const leaving = () => [frame("r", FrameKind.LEAVE), frame("a", FrameKind.LEAVE), frame("b", FrameKind.LEAVE)];

t.test("handover - within one root: the old stream goes after handoverMs, nothing sent twice", async (t) => {
  const { stream, sent } = oldStream();
  const h = new Handover(stream, leaving);
  t.equal(h.due(10_000, 2000, true), false, "not while the new stream connects");
  h.readyAtMs = 0;
  t.equal(h.due(1999, 2000, true), false, "not before handoverMs");
  t.equal(h.due(2000, 2000, false), false, "not before the new parent acked");
  t.equal(h.due(2000, 2000, true), true, "after handoverMs");
  t.equal(h.mirroring, false, "nothing goes the old way");
  await h.leave(10);
  t.same(sent, [["r leave", "a leave", "b leave"]], "every LEAVE at once");
});

t.test("handover - across roots: batches also go the old way, and the LEAVEs wait, until every origin sent its keyframe the new way", async (t) => {
  const { stream, sent } = oldStream();
  const h = new Handover(stream, leaving, true);
  h.readyAtMs = 0;
  t.equal(h.mirroring, true, "the new root has none of them yet: the old way too");
  h.mirror([frame("r", FrameKind.KEY), frame("a", FrameKind.DELTA)], []);
  t.same(sent.at(-1), ["a"], "the node's own frames (its new epoch) stay off the old way");
  h.sent([frame("r", FrameKind.KEY), frame("a", FrameKind.KEY), frame("b", FrameKind.DELTA)]);
  t.equal(h.awaiting, 1, "r's and a's keyframes went the new way; a delta of b is no keyframe");
  t.equal(h.due(5000, 2000, true), false, "b has not: the old root keeps it");
  h.leaveSelfIfDue(1999, 2000, true);
  t.equal(sent.length, 1, "the node's own LEAVE not before handoverMs");
  h.leaveSelfIfDue(2000, 2000, true);
  t.same(sent.at(-1), ["r leave"], "then only its own (its frames stopped going the old way)");
  h.sent([frame("b", FrameKind.KEY)]);
  t.equal(h.mirroring, false, "every keyframe went the new way: nothing more the old way");
  t.equal(h.due(5000, 2000, true), true);
  await h.leave(10);
  t.same(sent.at(-1), ["a leave", "b leave"], "the other LEAVEs, not the node's own again");
});

t.test("handover - across roots, a keyframe that never comes holds the old stream 10 × handoverMs at most", async (t) => {
  const h = new Handover(oldStream().stream, leaving, true);
  h.readyAtMs = 0;
  t.equal(h.due(19_999, 2000, true), false);
  t.equal(h.due(20_000, 2000, true), true);
});
