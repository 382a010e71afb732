import { create } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../src/core/logger.js";
import { Codec, FrameKind, FrameSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { UplinkSession } from "../../../src/wire/uplink-session.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";

const frame = (origin: string, seq: number, kind: FrameKind) =>
  create(FrameSchema, { origin, epoch: 1n, seq: BigInt(seq), timeMs: 1n, kind, codec: Codec.MSGPACK, payload: new Uint8Array([1]) });

t.test("uplink queue - the session's queue is bounded: on overflow the oldest deltas go first, and every drop is counted", async (t) => {
  const registry = new Registry();
  // Nobody listens on port 1: the session stays away from ready and frames pile up.
  const s = new UplinkSession(
    [{ name: "nowhere", address: "127.0.0.1:1" }],
    { hello: () => ({ node: "n1", tree: 0, epoch: 1n }), onResync: () => undefined, leaving: () => [] },
    { flushMs: 20, maxQueuedFrames: 5, ackTimeoutMs: 1000, connectTimeoutMs: 1000, healAfterMs: 1000, probeIntervalMs: 100, limits: DEFAULT_WIRE_LIMITS },
    { probe: async () => false, close: () => undefined },
    silentLogger(),
    registry,
  );
  s.start();
  t.teardown(() => s.close(0));
  const dropped = async (): Promise<number> => (await registry.getSingleMetric("banyan_uplink_dropped_frames_total")!.get()).values[0]?.value ?? 0;
  s.accept([frame("a", 1, FrameKind.KEY), frame("b", 1, FrameKind.KEY), frame("a", 2, FrameKind.DELTA), frame("b", 2, FrameKind.DELTA)], []);
  t.equal(await dropped(), 0);
  s.accept([frame("c", 1, FrameKind.KEY), frame("a", 3, FrameKind.DELTA), frame("c", 2, FrameKind.DELTA)], []);
  t.equal(await dropped(), 2, "two frames over the bound: two dropped, counted");
  t.equal(s.queuedFrames, 5);
  s.accept([frame("d", 1, FrameKind.KEY), frame("e", 1, FrameKind.KEY), frame("f", 1, FrameKind.KEY), frame("g", 1, FrameKind.KEY)], []);
  t.equal(await dropped(), 6);
  t.equal(s.queuedFrames, 5, "the queue stays at its bound");
  // A leaf's own frames (queued for its flushNow, no flush timer) meet the same bound.
  s.enqueue([frame("h", 1, FrameKind.KEY), frame("i", 1, FrameKind.KEY)], []);
  t.equal(s.queuedFrames, 5, "enqueue keeps the bound too");
  t.equal(await dropped(), 8, "and counts its drops");
});
