import { create } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../src/core/logger.js";
import { Codec, FrameKind, FrameSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { UplinkSession } from "../../../src/wire/uplink-session.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";

const frame = (origin: string, seq: number, kind: FrameKind) =>
  create(FrameSchema, { origin, epoch: 1n, seq: BigInt(seq), timeMs: 1n, kind, codec: Codec.MSGPACK, payload: new Uint8Array([1]) });

t.test("uplink queue - on overflow the oldest deltas go first, keyframes stay, and the origins are reported for resync", async (t) => {
  const dropped: string[][] = [];
  const registry = new Registry();
  // Nobody listens on port 1: the session stays away from ready and frames pile up.
  const s = new UplinkSession(
    [{ name: "nowhere", address: "127.0.0.1:1" }],
    { hello: () => ({ node: "n1", tree: 0, epoch: 1n }), onResync: () => undefined, onDrop: (o) => dropped.push([...o]), leaving: () => [] },
    { flushMs: 20, maxQueuedFrames: 5, ackTimeoutMs: 1000, connectTimeoutMs: 1000, healAfterMs: 1000, probeIntervalMs: 100, limits: DEFAULT_WIRE_LIMITS },
    { probe: async () => false, close: () => undefined },
    silentLogger(),
    registry,
  );
  s.start();
  t.teardown(() => s.close(0));
  s.accept([frame("a", 1, FrameKind.KEY), frame("b", 1, FrameKind.KEY), frame("a", 2, FrameKind.DELTA), frame("b", 2, FrameKind.DELTA)], []);
  t.equal(dropped.length, 0);
  s.accept([frame("c", 1, FrameKind.KEY), frame("a", 3, FrameKind.DELTA), frame("c", 2, FrameKind.DELTA)], []);
  t.same(dropped, [["a", "b"]], "the two oldest deltas (of a and b) were dropped and reported");
  t.equal(s.queuedFrames, 5);
  s.accept([frame("d", 1, FrameKind.KEY), frame("e", 1, FrameKind.KEY), frame("f", 1, FrameKind.KEY), frame("g", 1, FrameKind.KEY)], []);
  // 9 queued: both deltas (a3, c2) go first, then the two oldest keyframes (a, b).
  t.same(dropped[1]!.sort(), ["a", "b", "c"], "deltas go before any keyframe, then the oldest keyframes");
  t.equal(s.queuedFrames, 5);
  const m = await registry.getSingleMetric("banyan_uplink_dropped_frames_total")!.get();
  t.ok(m.values[0]!.value >= 4, "drops are counted");
});
