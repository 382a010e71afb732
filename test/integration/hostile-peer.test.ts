import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as http2 from "node:http2";
import * as net from "node:net";
import { Registry } from "prom-client";
import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { startRoot } from "../../src/root/root-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import { Codec, FrameKind, FrameSchema, UpSchema, type Frame } from "../../src/gen/banyan/v1/uplink_pb.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { DeltaEncoder } from "../../src/series/delta-encoder.js";
import { PrecisionRules } from "../../src/series/precision.js";
import { SeriesType, seriesDef } from "../../src/series/series-def.js";
import { encodePayload } from "../../src/wire/payload-codec.js";
import { UPLINK_STREAM_PATH, decodeDown } from "../../src/wire/uplink-grpc.js";
import { eventually } from "../fixtures/cluster.js";
import { generateCentralTopology } from "../../src/tools/topology/central.js";
import { encodeEvents } from "../../src/root/events/event-frames.js";

/** A client that writes raw bytes, so a test can send what no Banyan node would. */
const RawClient = grpc.makeGenericClientConstructor(
  {
    Stream: {
      path: UPLINK_STREAM_PATH,
      requestStream: true,
      responseStream: true,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  "Uplink",
);

const up = (msg: Parameters<typeof create<typeof UpSchema>>[1]): Buffer => Buffer.from(toBinary(UpSchema, create(UpSchema, msg)));

/** A raw stream to a root's tree port (on a connection of its own, or on `client`'s), and how it ended (the error's details, or "ended"). */
function rawStream(t: Tap.Test, port: number, client?: grpc.Client): { call: grpc.ClientDuplexStream<Buffer, Buffer>; closed: Promise<string> } {
  if (client === undefined) {
    const own = new RawClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    t.teardown(() => own.close());
    client = own;
  }
  const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
  const closed = new Promise<string>((resolve) => {
    call.on("error", (err: grpc.ServiceError) => resolve(err.details));
    call.on("end", () => resolve("ended"));
  });
  call.on("data", () => undefined);
  return { call, closed };
}

function frameOf(origin: string, epoch: bigint, seq: bigint, enc: DeltaEncoder): Frame {
  const f = enc.encode()!;
  const w = encodePayload(f.payload);
  return create(FrameSchema, { origin, epoch, seq, timeMs: BigInt(Date.now()), kind: f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA, codec: w.codec, payload: w.bytes });
}

t.test("hostile peer - bad frames are refused and counted, the good origin behind the same child keeps flowing", async (t) => {
  // n01 and n09 under the root, n02 and n03 under n01.
  const { topology } = generateTopology({ nodes: ["n01", "n02", "n03", "n09"], roots: ["r1"], trees: 1, local: 27000 });
  const registry = new Registry();
  const root = await startRoot({ topology, topologySource: "test", name: "r1", log: silentLogger(), registry }, parseRootConfig({ resyncIntervalMs: 1 }));
  t.teardown(() => root.stop());
  const client = new RawClient(`127.0.0.1:${root.grpcPort}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
  const resyncs: string[] = [];
  call.on("data", (b: Buffer) => {
    const d = decodeDown(b);
    if (d.msg.case === "resync") resyncs.push(...d.msg.value.origins);
  });
  call.on("error", () => undefined);
  call.write(up({ msg: { case: "hello", value: { node: "n01", tree: 0, epoch: 1n, version: "test" } } }));

  const good = new DeltaEncoder(new PrecisionRules());
  const g = good.define(seriesDef("work_done_total", { job: "x" }, SeriesType.Counter));
  let linkSeq = 0n;
  const send = (frames: Frame[]): void => {
    call.write(up({ msg: { case: "batch", value: { linkSeq: ++linkSeq, frames, alive: [] } } }));
  };
  good.set(g, 10);
  const f1 = frameOf("n01", 5n, 1n, good);
  good.set(g, 20);
  const f2 = frameOf("n01", 5n, 2n, good);
  good.set(g, 30);
  const f3 = frameOf("n01", 5n, 3n, good);
  const evil = (payload: Uint8Array, codec = Codec.MSGPACK_LZ4): Frame =>
    create(FrameSchema, { origin: "n02", epoch: 1n, seq: 1n, timeMs: 1n, kind: FrameKind.KEY, codec, payload });
  const bomb = Buffer.alloc(16);
  bomb.writeUInt32LE(0x7fffffff, 0);

  send([f1, evil(bomb)]);
  send([f2, f2, f1, evil(Buffer.from("not msgpack at all"), Codec.MSGPACK)]); // duplicate and reordered
  send([create(FrameSchema, { ...f3, epoch: 4n }), f3]); // a stale epoch first, then the real one
  send([create(FrameSchema, { ...f3, origin: "../etc/passwd" })]); // a bad envelope
  const labelBomb = new DeltaEncoder();
  const labels: Record<string, string> = {};
  for (let k = 0; k < 40; k++) labels[`l${k}`] = "v";
  labelBomb.set(labelBomb.define(seriesDef("bomb", labels, SeriesType.Gauge)), 1);
  send([frameOf("n03", 1n, 1n, labelBomb)]);

  t.ok(await eventually(() => root.store.origin("n01")?.decoded.value(0) === 30, 5000), "the good origin's counter reached 30");
  const st = root.store.origin("n01")!;
  t.equal(st.seq, 3n);
  t.equal(st.up, true);
  t.ok(await eventually(() => resyncs.includes("n02") && resyncs.includes("n03"), 5000), `bad origins were asked for keyframes (${resyncs})`);
  t.equal(root.store.origin("n02")?.up ?? false, false, "the bomb's origin shows nothing");
  t.equal(root.store.origin("n03")?.up ?? false, false, "the label bomb shows nothing");

  const page = await root.render();
  t.match(page, /^banyan_root_decode_errors_total 3$/m, "three payloads refused (bomb, garbage, label bomb)");
  t.match(page, /^banyan_root_frames_dropped_total\{reason="duplicate"\} 2$/m, "duplicate and reordered frames dropped");
  t.match(page, /^banyan_root_frames_dropped_total\{reason="stale_epoch"\} 1$/m);
  t.match(page, /^banyan_relay_frames_rejected_total\{reason="bad_frame"\} 1$/m, "bad envelope refused at the edge");
  t.match(page, /^work_done_total\{job="x",instance="n01"\} 30$/m);

  // A stream that sends bytes that are not an Up message is closed; the others are not touched.
  const { call: bad, closed } = rawStream(t, root.grpcPort);
  bad.write(Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]));
  t.match(await closed, /malformed Up message|ended/, "malformed stream closed");
  good.set(g, 40);
  send([frameOf("n01", 5n, 4n, good)]);
  t.ok(await eventually(() => root.store.origin("n01")?.decoded.value(0) === 40, 5000), "the good stream still flows");
  call.end();
});

t.test("hostile peer - a child speaks only for its planned subtree: another node's origin, or one the topology lacks, is refused and counted; a stranger's Hello is refused", async (t) => {
  // One tree of fanout 2: n01 and n09 under the root, n02 and n03 under n01.
  const { topology } = generateTopology({ nodes: ["n01", "n02", "n03", "n09"], roots: ["r1"], trees: 1, local: 27100 });
  const registry = new Registry();
  const root = await startRoot({ topology, topologySource: "test", name: "r1", log: silentLogger(), registry }, parseRootConfig({}));
  t.teardown(() => root.stop());
  const open = (node: string): { call: grpc.ClientDuplexStream<Buffer, Buffer>; closed: Promise<string> } => {
    const stream = rawStream(t, root.grpcPort);
    stream.call.write(up({ msg: { case: "hello", value: { node, tree: 0, epoch: 1n, version: "test" } } }));
    return stream;
  };
  const key = (origin: string, v: number): Frame => {
    const enc = new DeltaEncoder(new PrecisionRules());
    enc.set(enc.define(seriesDef("owned_total", { job: "x" }, SeriesType.Counter)), v);
    return frameOf(origin, 9n, 1n, enc);
  };
  // n02 (a leaf) claims to be its parent n01, and a node that does not exist; then sends its own.
  const n02 = open("n02");
  n02.call.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [key("n01", 666), key("n99", 666), key("n02", 2)], alive: [] } } }));
  t.ok(await eventually(() => root.store.origin("n02")?.up === true, 5000), "its own origin is applied");
  t.equal(root.store.origin("n01"), undefined, "its parent's origin was never applied");
  t.equal(root.store.origin("n99"), undefined, "nor a node the topology lacks");
  const page = await root.render();
  t.match(page, /^banyan_relay_frames_rejected_total\{reason="foreign_origin"\} 2$/m, "both refused and counted");
  // The real n01, above it, may carry n02 and n03 (its subtree) as well as itself.
  const n01 = open("n01");
  n01.call.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [key("n01", 1), key("n03", 3)], alive: [] } } }));
  t.ok(await eventually(() => root.store.origin("n01")?.up === true && root.store.origin("n03")?.up === true, 5000), "a node carries its subtree");
  // A Hello from a name the topology lacks is refused outright: no state for it at all.
  const stranger = open("n42");
  t.match(await stranger.closed, /not a node of the topology|ended/, "a stranger's stream is closed");
  t.match(await root.render(), /^banyan_relay_streams_refused_total [1-9]/m);
  n01.call.end();
  n02.call.end();
});

t.test("hostile peer - the tree port's connections are bounded: per address, and closed when no Hello comes in time", async (t) => {
  const { topology } = generateTopology({ nodes: ["n01", "n02", "n03", "n09"], roots: ["r1"], trees: 1, local: 27200 });
  const registry = new Registry();
  const root = await startRoot(
    { topology, topologySource: "test", name: "r1", log: silentLogger(), registry },
    parseRootConfig({ tree: { maxConnectionsPerAddress: 6, handshakeTimeoutMs: 800 } }),
  );
  t.teardown(() => root.stop());
  // Idle connections that never send the HTTP/2 preface: six held, the seventh refused at once.
  const idle: net.Socket[] = [];
  const closedAfter: Promise<number>[] = [];
  for (let k = 0; k < 7; k++) {
    const s = net.connect(root.grpcPort, "127.0.0.1");
    s.on("error", () => undefined);
    s.resume(); // reads, so it sees the root's close
    const opened = Date.now();
    closedAfter.push(new Promise((resolve) => s.once("close", () => resolve(Date.now() - opened))));
    idle.push(s);
    await new Promise((resolve) => s.once("connect", resolve));
  }
  t.teardown(() => idle.forEach((s) => s.destroy()));
  const times = await Promise.all(closedAfter);
  t.ok(times.every((ms) => ms < 10_000), `every idle connection was closed by the root (after ${times.join(", ")} ms)`);
  const page = await root.render();
  t.match(page, /^banyan_tree_connections_refused_total\{reason="too_many_from_address"\} [1-9]/m, "past the cap from one address: refused");
  t.match(page, /^banyan_tree_connections_refused_total\{reason="handshake_timeout"\} 6$/m, "no Hello in time: closed");
  // An honest child still gets in and is applied.
  const { call } = rawStream(t, root.grpcPort);
  call.write(up({ msg: { case: "hello", value: { node: "n09", tree: 0, epoch: 1n, version: "test" } } }));
  const enc = new DeltaEncoder(new PrecisionRules());
  enc.set(enc.define(seriesDef("honest_total", { job: "x" }, SeriesType.Counter)), 7);
  call.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [frameOf("n09", 1n, 1n, enc)], alive: [] } } }));
  t.ok(await eventually(() => root.store.origin("n09")?.up === true, 5000), "an honest child connects and is applied");
  await new Promise((r) => setTimeout(r, 1200));
  t.equal(root.store.origin("n09")?.up, true, "its connection outlives the handshake timeout (it said Hello)");
  call.end();
});

t.test("hostile peer - streams that never say Hello: a connection holds a few, each closed after the handshake timeout; its Hello'd stream carries on", async (t) => {
  const { topology } = generateTopology({ nodes: ["n01", "n02", "n03", "n09"], roots: ["r1"], trees: 1, local: 27250 });
  const root = await startRoot({ topology, topologySource: "test", name: "r1", log: silentLogger(), registry: new Registry() }, parseRootConfig({ tree: { handshakeTimeoutMs: 800 } }));
  t.teardown(() => root.stop());
  // One connection (one client: its streams share it): a stream that says Hello and sends, then 40 silent ones.
  const client = new RawClient(`127.0.0.1:${root.grpcPort}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const open = (): ReturnType<typeof rawStream> => rawStream(t, root.grpcPort, client);
  const honest = open();
  honest.call.write(up({ msg: { case: "hello", value: { node: "n09", tree: 0, epoch: 1n, version: "test" } } }));
  const enc = new DeltaEncoder(new PrecisionRules());
  const id = enc.define(seriesDef("honest_total", { job: "x" }, SeriesType.Counter));
  enc.set(id, 1);
  honest.call.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [frameOf("n09", 1n, 1n, enc)], alive: [] } } }));
  t.ok(await eventually(() => root.store.origin("n09")?.up === true, 5000), "the honest stream is up");
  const silent = Array.from({ length: 40 }, () => open());
  const outcomes = await Promise.all(silent.map((s) => s.closed));
  const refused = outcomes.filter((o) => /streams on one connection without a Hello/.test(o)).length;
  const timedOut = outcomes.filter((o) => /no Hello within 800 ms/.test(o)).length;
  t.equal(refused + timedOut, 40, `every silent stream ended by the root (${refused} refused at once, ${timedOut} after the timeout)`);
  t.ok(timedOut >= 1 && timedOut <= 8, `a connection holds at most 8 silent streams (${timedOut} held)`);
  enc.set(id, 2);
  honest.call.write(up({ msg: { case: "batch", value: { linkSeq: 2n, frames: [frameOf("n09", 1n, 2n, enc)], alive: [] } } }));
  t.ok(await eventually(async () => /^honest_total\{job="x",instance="n09"\} 2$/m.test(await root.render()), 5000), "the Hello'd stream on that connection still carries frames");
  honest.call.end();
});

t.test("hostile peer - a child that never reads its acks is closed; a second stream with the same name replaces the first", async (t) => {
  const { topology } = generateTopology({ nodes: ["n01", "n02", "n03", "n09"], roots: ["r1"], trees: 1, local: 27300 });
  const registry = new Registry();
  const root = await startRoot({ topology, topologySource: "test", name: "r1", log: silentLogger(), registry }, parseRootConfig({}));
  t.teardown(() => root.stop());
  // Raw HTTP/2 with a receive window of 0: the root can send it nothing, while it writes batches
  // (gRPC-framed Up messages) as fast as it can. Before, the root queued every ack (1 GB RSS).
  const session = http2.connect(`http://127.0.0.1:${root.grpcPort}`, { settings: { initialWindowSize: 0 } });
  session.on("error", () => undefined);
  t.teardown(() => session.destroy());
  const req = session.request({ ":method": "POST", ":path": UPLINK_STREAM_PATH, "content-type": "application/grpc", te: "trailers" });
  req.on("error", () => undefined);
  const grpcFrame = (b: Buffer): Buffer => Buffer.concat([Buffer.from([0, b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b]);
  let ended = false;
  const deafClosed = new Promise<void>((resolve) => req.once("close", resolve)).then(() => (ended = true));
  req.write(grpcFrame(up({ msg: { case: "hello", value: { node: "n01", tree: 0, epoch: 1n, version: "test" } } })));
  const burst = Buffer.concat(Array.from({ length: 500 }, () => grpcFrame(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [], alive: [] } } }))));
  let sent = 0;
  while (!ended && sent < 200_000) {
    req.write(burst);
    sent += 500;
    await new Promise((r) => setImmediate(r));
  }
  await deafClosed;
  t.ok(sent < 200_000, `the deaf child's connection was closed after ${sent} batches`);
  const pg = await root.render();
  t.match(pg, /^banyan_tree_connections_refused_total\{reason="acks_not_read"\} 1$/m, "counted");

  // n09 twice: the first stream is ended, the second carries on.
  const first = rawStream(t, root.grpcPort);
  first.call.write(up({ msg: { case: "hello", value: { node: "n09", tree: 0, epoch: 1n, version: "test" } } }));
  await eventually(async () => /^banyan_relay_children 1$/m.test(await root.render()), 5000);
  const second = rawStream(t, root.grpcPort);
  second.call.write(up({ msg: { case: "hello", value: { node: "n09", tree: 0, epoch: 2n, version: "test" } } }));
  t.match(await first.closed, /replaced by a newer stream of n09/);
  t.ok(await eventually(async () => /^banyan_relay_children 1$/m.test(await root.render()), 5000), "one stream per node");
  second.call.end();
});

t.test("hostile peer - over its memory budget a root takes no new origin and lets none grow; what it holds keeps flowing; under it again, all comes", async (t) => {
  const { topology } = generateTopology({ nodes: ["n01", "n02", "n03", "n09"], roots: ["r1"], trees: 1, local: 27400 });
  const registry = new Registry();
  const config = parseRootConfig({ resyncIntervalMs: 1 });
  const root = await startRoot({ topology, topologySource: "test", name: "r1", log: silentLogger(), registry }, config);
  t.teardown(() => root.stop());
  const { call } = rawStream(t, root.grpcPort);
  call.write(up({ msg: { case: "hello", value: { node: "n01", tree: 0, epoch: 1n, version: "test" } } }));
  let linkSeq = 0n;
  const send = (frames: Frame[]): void => void call.write(up({ msg: { case: "batch", value: { linkSeq: ++linkSeq, frames, alive: [] } } }));
  const n01 = new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0, absolute: 0 }]));
  const a = n01.define(seriesDef("held_total", { job: "x" }, SeriesType.Counter));
  n01.set(a, 1);
  send([frameOf("n01", 1n, 1n, n01)]);
  t.ok(await eventually(() => root.store.origin("n01")?.up === true, 5000), "n01 up");

  root.reload(parseRootConfig({ resyncIntervalMs: 1, memoryBudgetBytes: 1 }), topology);
  t.match(await root.render(), /^banyan_root_memory_budget_bytes 1$/m);
  const n02 = new DeltaEncoder();
  n02.set(n02.define(seriesDef("new_total", { job: "x" }, SeriesType.Counter)), 5);
  send([frameOf("n02", 1n, 1n, n02)]);
  n01.set(a, 2);
  send([frameOf("n01", 1n, 2n, n01)]);
  t.ok(await eventually(() => root.store.origin("n01")?.decoded.value(0) === 2, 5000), "what n01 holds keeps flowing");
  n01.set(n01.define(seriesDef("grown_total", { job: "x" }, SeriesType.Counter)), 1);
  send([frameOf("n01", 1n, 3n, n01)]);
  t.ok(await eventually(async () => /^banyan_root_frames_dropped_total\{reason="memory_budget"\} 2$/m.test(await root.render()), 5000), "a new origin and a growing one refused, and counted");
  t.notOk(root.store.origin("n02")?.up, "n02 was not taken");
  t.equal(root.store.origin("n01")?.seriesCount, 1, "n01 did not grow");

  root.reload(config, topology);
  // Their keyframes, as the nodes would send them when asked.
  n02.requestKeyframe();
  n02.set(0, 6);
  send([frameOf("n02", 2n, 1n, n02)]);
  n01.requestKeyframe();
  send([frameOf("n01", 1n, 4n, n01)]);
  t.ok(await eventually(() => root.store.origin("n02")?.up === true && root.store.origin("n01")?.seriesCount === 2, 5000), "under the budget again: both taken");
  call.end();
});

t.test("hostile peer - a cluster's root at a central root: only its own cluster's names, its label not forgeable, its origins bounded, bad events refused", async (t) => {
  const topology = generateCentralTopology({ clusters: [{ name: "siteA", roots: ["ra1"] }, { name: "siteB", roots: ["rb1"] }], roots: ["central1"], local: 27150 });
  const registry = new Registry();
  const root = await startRoot(
    { topology, topologySource: "test", name: "central1", log: silentLogger(), registry },
    parseRootConfig({ tree: { maxOriginsPerLink: 5 }, clusters: { overrides: { siteA: { maxOrigins: 3 } } } }),
  );
  t.teardown(() => root.stop());
  const stream = rawStream(t, root.grpcPort);
  stream.call.write(up({ msg: { case: "hello", value: { node: "ra1", tree: 0, epoch: 1n, version: "test" } } }));
  const key = (origin: string): Frame => {
    const enc = new DeltaEncoder(new PrecisionRules());
    enc.set(enc.define(seriesDef("owned_total", { cluster: "siteB", instance: "elsewhere" }, SeriesType.Counter)), 1);
    return frameOf(origin, 9n, 1n, enc);
  };
  const events = (payload: Uint8Array): Frame => create(FrameSchema, { origin: "siteA/ra1", epoch: 9n, seq: 5n, timeMs: BigInt(Date.now()), kind: FrameKind.EVENTS, codec: Codec.MSGPACK, payload });
  stream.call.write(
    up({
      msg: {
        case: "batch",
        value: {
          linkSeq: 1n,
          frames: [key("siteB/n01"), key("n01"), key("siteA/x/y"), key("siteA/n01"), events(new Uint8Array([0xc1])), events(encodeEvents([{ id: "ab", type: "node_down", time: new Date().toISOString(), severity: "warning", root: "ra1", node: "n01", labels: { cluster: "siteB" } }]))],
          alive: [],
        },
      },
    }),
  );
  t.ok(await eventually(() => root.store.origin("siteA/n01")?.up === true, 5000), "its own cluster's node is applied");
  t.equal(root.store.origin("siteB/n01"), undefined, "another cluster's name is refused");
  t.equal(root.store.origin("n01"), undefined, "so is a name of no cluster");
  let page = await root.render();
  t.match(page, /^owned_total\{cluster="siteA",instance="n01"\} 1$/m, "the link's cluster and the node's name, whatever labels the series claimed");
  t.match(page, /^banyan_relay_frames_rejected_total\{reason="foreign_origin"\} 2$/m);
  t.match(page, /^banyan_relay_frames_rejected_total\{reason="bad_frame"\} 1$/m, "a name with two slashes is no origin name");
  const got = (await (await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/events?type=node_down`)).json()) as { events: { labels: Record<string, string> }[] };
  t.same(got.events.map((e) => e.labels.cluster), ["siteA"], "the good event is kept, with the link's cluster; the bad payload is refused");
  // Past maxOrigins for siteA (3), then past tree.maxOriginsPerLink (5): refused, counted, nothing kept.
  stream.call.write(up({ msg: { case: "batch", value: { linkSeq: 2n, frames: ["n02", "n03", "n04", "n05", "n06", "n07"].map((n) => key(`siteA/${n}`)), alive: [] } } }));
  t.ok(await eventually(async () => /^banyan_relay_frames_rejected_total\{reason="too_many_origins"\} [1-9]/m.test(await root.render()), 5000), "origins per link bounded");
  page = await root.render();
  t.match(page, /^banyan_central_refused_total\{cluster="siteA",reason="origins"\} [1-9]/m, "origins per cluster bounded");
  t.equal([...root.store.originNames].filter((n) => n.startsWith("siteA/")).length, 3, "siteA holds exactly its maxOrigins");
  stream.call.end();
});
