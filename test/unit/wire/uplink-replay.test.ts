import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../src/core/logger.js";
import { Codec, DownSchema, FrameKind, FrameSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { decodeUp, uplinkServiceDefinition } from "../../../src/wire/uplink-grpc.js";
import { UplinkSession } from "../../../src/wire/uplink-session.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";
import { eventually } from "../../fixtures/cluster.js";

const frame = (origin: string, seq: number) => create(FrameSchema, { origin, epoch: 1n, seq: BigInt(seq), timeMs: 1n, kind: FrameKind.DELTA, codec: Codec.MSGPACK, payload: new Uint8Array([1]) });

/** A parent that acks what it is sent, records it, and after `silentAfter` acked batches takes everything and answers nothing (a host that lost power). */
async function parent(t: Tap.Test, silentAfter = Infinity): Promise<{ address: string; got: string[] }> {
  const got: string[] = [];
  let acked = 0;
  const server = new grpc.Server();
  server.addService(uplinkServiceDefinition, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, unknown>) => {
      call.on("data", (bytes: Buffer) => {
        const up = decodeUp(bytes);
        if (up.msg.case === "hello") return void call.write(create(DownSchema, { msg: { case: "ack", value: { linkSeq: 0n } } }));
        if (up.msg.case !== "batch") return;
        for (const f of up.msg.value.frames) got.push(`${f.origin}/${f.seq}`);
        if (acked++ < silentAfter) call.write(create(DownSchema, { msg: { case: "ack", value: { linkSeq: up.msg.value.linkSeq } } }));
      });
      call.on("error", () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, got };
}

t.test("uplink replay - after its parent fails, a node sends again what that parent acked lately (not older), then what it had not acked", async (t) => {
  const a = await parent(t, 2);
  const b = await parent(t);
  const registry = new Registry();
  const ackTimeoutMs = 300;
  const s = new UplinkSession(
    [{ name: "a", address: a.address }, { name: "b", address: b.address }],
    { hello: () => ({ node: "n1", tree: 0, epoch: 1n }), onResync: () => undefined, leaving: () => [] },
    { flushMs: 5, maxQueuedFrames: 100, ackTimeoutMs, connectTimeoutMs: 1000, healAfterMs: 60_000, probeIntervalMs: 60_000, limits: DEFAULT_WIRE_LIMITS },
    { probe: async () => false, close: () => undefined },
    silentLogger(),
    registry,
  );
  s.start();
  t.teardown(() => s.close(0));
  t.ok(await eventually(() => s.state === "ready", 5000), "attached to a");
  s.accept([frame("c1", 1)], []);
  t.ok(await eventually(() => a.got.includes("c1/1"), 5000), "a acked c1/1");
  // Older than the replay window (two ack timeouts) when a fails: delivered, as far as anyone can tell.
  await new Promise((r) => setTimeout(r, 3 * ackTimeoutMs));
  s.accept([frame("c1", 2)], []);
  t.ok(await eventually(() => a.got.includes("c1/2"), 5000), "a acked c1/2, and goes silent");
  s.accept([frame("c1", 3)], []);
  t.ok(await eventually(() => b.got.includes("c1/3"), 10_000), "the node failed over to b with what a never acked");
  t.same(b.got, ["c1/2", "c1/3"], "b got what a had acked within the window (c1/2: a may have died with it), then the rest, in order; not c1/1");
  const replayed = (await registry.getSingleMetric("banyan_uplink_frames_replayed_total")!.get()).values[0]?.value ?? 0;
  t.equal(replayed, 1, "one frame replayed, counted");
});
