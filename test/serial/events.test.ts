import t from "tap";
import { eventually, sleep, startCluster } from "../fixtures/cluster.js";
import { readSse } from "../fixtures/sse.js";

type Ev = { id: string; type: string; node?: string; severity: string; labels: Record<string, string>; details?: Record<string, unknown> };

async function eventsAt(port: number, query = ""): Promise<Ev[]> {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/events${query}`);
  return ((await r.json()) as { events: Ev[] }).events;
}

/** The SSE stream's events as they come. */
function stream(t: Tap.Test, port: number, query = ""): Ev[] {
  const got: Ev[] = [];
  readSse(t, port, `/api/v1/events/stream${query}`, (_event, data) => got.push(JSON.parse(data) as Ev));
  return got;
}

t.test("events - a node that goes down and comes back, as events at /api/v1/events, on the SSE stream and in banyan_events_total", async (t) => {
  const cluster = await startCluster({ nodes: "n[1-6]", roots: "r1", trees: 1, basePort: 22400, series: 10, intervalMs: 200, rootConfig: { deadAfterMs: 1000, events: { nodeLabels: [{ nodes: "n[1-3]", labels: { rack: "a1" } }, { nodes: "n[1-6]", labels: { features: "ib,gpu" } }] } } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 6, 20_000), "all up");
  const port = cluster.roots[0]!.httpPort;
  t.match((await eventsAt(port))[0], { type: "root_restart", labels: { root: "r1" } }, "the root's start is an event");
  const live = stream(t, port, "?type=node_down,node_up");
  await sleep(300);
  // A leaf: its going does not take others with it.
  const leaf = [...cluster.topology.nodes].find(([, n]) => n.children.length === 0)![0];
  await cluster.kill(leaf);
  t.ok(await eventually(async () => (await eventsAt(port, `?type=node_down&node=${leaf}`)).length === 1, 10_000), `node_down for ${leaf}`);
  const down = (await eventsAt(port, "?type=node_down"))[0]!;
  t.match(down, { node: leaf, severity: "warning", labels: { instance: leaf, tree: "0", root: "r1", features: "ib,gpu" } }, "with the node's labels from the config");
  t.equal(down.labels["rack"], ["n1", "n2", "n3"].includes(leaf) ? "a1" : undefined, "each hostlist's labels on its own nodes");
  t.match(down.id, /^[0-9a-f]{16}$/);
  await cluster.restart(leaf);
  t.ok(await eventually(async () => (await eventsAt(port, `?type=node_up&node=${leaf}`)).length === 1, 10_000), `node_up for ${leaf}`);
  t.ok(await eventually(() => live.map((e) => e.type).join(",") === "node_down,node_up", 5000), `the stream had both, filtered (${live.map((e) => e.type)})`);
  const page = await cluster.roots[0]!.render();
  t.match(page, /^banyan_events_total\{type="node_down"\} 1$/m);
  t.match(page, /^banyan_events_total\{type="root_restart"\} 1$/m);
  t.equal((await fetch(`http://127.0.0.1:${port}/api/v1/events?type=nope`)).status, 400, "an unknown type is a 400");
  t.equal((await eventsAt(port, `?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).length, 0, "since");
  t.equal((await eventsAt(port, "?limit=1")).length, 1, "limit");
});

t.test("events - a relay killed: its children's failovers, the tree degraded; back: their heals, the tree restored", async (t) => {
  const FAST = { intervalMs: 250, ackTimeoutMs: 500, healAfterMs: 1500 };
  const cluster = await startCluster({ nodes: "n[01-07]", roots: "r1", trees: 1, basePort: 22450, series: 10, intervalMs: 250, agentConfig: FAST, rootConfig: { deadAfterMs: 1500, events: { startupMs: 1000, treeDegradedBelow: 0.9 } } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 7, 20_000), "all up");
  const port = cluster.roots[0]!.httpPort;
  // An interior relay with children.
  const relay = [...cluster.topology.nodes].find(([, n]) => n.children.length > 0 && n.parent !== "r1")?.[0] ?? [...cluster.topology.nodes].find(([, n]) => n.children.length > 0)![0];
  const children = cluster.topology.nodes.get(relay)!.children;
  await sleep(1200);
  await cluster.kill(relay);
  t.ok(await eventually(async () => (await eventsAt(port, "?type=failover")).filter((e) => children.includes(e.node!)).length === children.length, 15_000), `a failover event for each of ${relay}'s children`);
  const f = (await eventsAt(port, "?type=failover"))[0]!;
  t.match(f, { severity: "warning", details: { from: relay, planned: relay } });
  t.ok(await eventually(async () => (await eventsAt(port, "?type=tree_degraded")).length === 1, 10_000), "1 of 7 nodes down: the tree is degraded (below 0.9)");
  t.match((await eventsAt(port, "?type=tree_degraded"))[0], { severity: "critical", labels: { tree: "0", root: "r1" }, details: { up: 6, nodes: 7 } });
  await cluster.restart(relay);
  t.ok(await eventually(async () => (await eventsAt(port, "?type=heal")).filter((e) => children.includes(e.node!)).length === children.length, 20_000), "a heal event for each child when they move back");
  t.ok(await eventually(async () => (await eventsAt(port, "?type=tree_restored")).length === 1, 10_000), "the tree restored");
});

t.test("events - a webhook receiver down for a while gets every event afterwards, in order and signed; past its queue, dead letters are counted", async (t) => {
  const { createServer } = await import("node:http");
  const { createHmac } = await import("node:crypto");
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "banyan-hook-"));
  writeFileSync(join(dir, "secret"), "s3cret\n");
  const hookPort = 22590;
  const got: Ev[] = [];
  let badSignatures = 0;
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const want = `sha256=${createHmac("sha256", "s3cret").update(body).digest("hex")}`;
      if (req.headers["x-banyan-signature"] !== want) badSignatures++;
      got.push(...(JSON.parse(body) as { events: Ev[] }).events);
      res.writeHead(200).end();
    });
  });
  t.teardown(() => receiver.close());
  // The receiver is down from the start: the root's start and the first events wait.
  const cluster = await startCluster({
    nodes: "n[1-4]",
    roots: "r1",
    trees: 1,
    basePort: 22500,
    series: 10,
    intervalMs: 200,
    rootConfig: { deadAfterMs: 1000, events: { webhooks: [{ url: `http://127.0.0.1:${hookPort}/hook`, secretFile: join(dir, "secret") }, { url: `http://127.0.0.1:${hookPort + 1}/never`, maxQueue: 2 }] } },
  });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 4, 20_000), "all up");
  const port = cluster.roots[0]!.httpPort;
  const leaf = [...cluster.topology.nodes].find(([, n]) => n.children.length === 0)![0];
  await cluster.kill(leaf);
  t.ok(await eventually(async () => (await eventsAt(port, "?type=node_down")).length === 1, 10_000), "an event while the receiver is down");
  await cluster.restart(leaf);
  t.ok(await eventually(async () => (await eventsAt(port, "?type=node_up")).length === 1, 10_000));
  await sleep(1500);
  await new Promise<void>((r) => receiver.listen(hookPort, "127.0.0.1", () => r()));
  const atRoot = await eventsAt(port);
  t.ok(await eventually(() => got.length >= atRoot.length, 40_000, 250), `every event delivered once it is back (${got.length} of ${atRoot.length})`);
  t.same(got.slice(0, atRoot.length).map((e) => e.id), atRoot.map((e) => e.id), "in order, none lost");
  t.equal(badSignatures, 0, "every POST signed with the shared secret");
  const page = await cluster.roots[0]!.render();
  t.match(page, new RegExp(`^banyan_webhook_dead_letters_total\\{url="http://127.0.0.1:${hookPort + 1}/never"\\} [1-9]`, "m"), "the other webhook, down all along with a queue of 2: dead letters counted");
  t.match(page, new RegExp(`^banyan_webhook_queued_events\\{url="http://127.0.0.1:${hookPort + 1}/never"\\} 2$`, "m"), "and its queue stays at its bound");
});

t.test("events - a straggler: one node of a job idles while the others work, a job_straggler event; it recovers when it works again", async (t) => {
  const grpc = await import("@grpc/grpc-js");
  const { create, toBinary } = await import("@bufbuild/protobuf");
  const { Registry } = await import("prom-client");
  const { generateTopology } = await import("../../src/tools/topology/generate.js");
  const { startRoot } = await import("../../src/root/root-daemon.js");
  const { parseRootConfig } = await import("../../src/root/root-config.js");
  const { silentLogger } = await import("../../src/core/logger.js");
  const { FrameKind, FrameSchema, UpSchema } = await import("../../src/gen/banyan/v1/uplink_pb.js");
  const { DeltaEncoder } = await import("../../src/series/delta-encoder.js");
  const { PrecisionRules } = await import("../../src/series/precision.js");
  const { SeriesType, seriesDef } = await import("../../src/series/series-def.js");
  const { encodePayload } = await import("../../src/wire/payload-codec.js");
  const { UPLINK_STREAM_PATH } = await import("../../src/wire/uplink-grpc.js");
  const { aliveRecord } = await import("../../src/wire/frame-flow.js");
  const nodes = ["n01", "n02", "n03", "n04"];
  const { topology } = generateTopology({ nodes, roots: ["r1"], trees: 1, local: 22550 });
  const root = await startRoot(
    { topology, topologySource: "test", name: "r1", log: silentLogger(), registry: new Registry() },
    parseRootConfig({ intervalMs: 250, deadAfterMs: 5000, events: { startupMs: 1000, stragglers: { windowMs: 2000, minNodes: 3, belowMedian: 0.5 } } }),
  );
  t.teardown(() => root.stop());
  const Raw = grpc.makeGenericClientConstructor(
    { Stream: { path: UPLINK_STREAM_PATH, requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
    "Uplink",
  );
  // Each node on its own stream, with the job's CPU counter: 2 CPU-seconds a second, n04 none until told.
  let n04Works = false;
  const sims = nodes.map((node) => {
    const client = new Raw(`127.0.0.1:${root.grpcPort}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    const call = (client as unknown as { Stream(): import("@grpc/grpc-js").ClientDuplexStream<Buffer, Buffer> }).Stream();
    call.on("data", () => undefined);
    call.on("error", () => undefined);
    call.write(Buffer.from(toBinary(UpSchema, create(UpSchema, { msg: { case: "hello", value: { node, tree: 0, epoch: 1n, version: "test" } } }))));
    const enc = new DeltaEncoder(new PrecisionRules([{ match: "*", relative: 0, absolute: 0 }]));
    const id = enc.define(seriesDef("banyan_job_cpu_seconds_total", { job_id: "9", user: "alice", partition: "p", job: "node" }, SeriesType.Counter));
    return { node, client, call, enc, id, cpu: 0, seq: 0n, linkSeq: 0n };
  });
  const tick = (): void => {
    for (const s of sims) {
      if (s.node !== "n04" || n04Works) s.cpu += 0.5;
      s.enc.set(s.id, s.cpu);
      const f = s.enc.encode();
      // Nothing changed (n04 idling): an alive record, as an agent sends, or the root would take n04
      // down after deadAfterMs and judge the job without it (the test then raced that deadline).
      const w = f === null ? null : encodePayload(f.payload);
      const frames = f === null || w === null ? [] : [create(FrameSchema, { origin: s.node, epoch: 1n, seq: ++s.seq, timeMs: BigInt(Date.now()), kind: f.kind === "key" ? FrameKind.KEY : FrameKind.DELTA, codec: w.codec, payload: w.bytes })];
      const alive = f === null ? [aliveRecord(s.node, 1n, s.seq, Date.now())] : [];
      s.call.write(Buffer.from(toBinary(UpSchema, create(UpSchema, { msg: { case: "batch", value: { linkSeq: ++s.linkSeq, frames, alive } } }))));
    }
  };
  const timer = setInterval(tick, 250);
  t.teardown(() => {
    clearInterval(timer);
    for (const s of sims) {
      s.call.end();
      s.client.close();
    }
  });
  const stragglers = async (): Promise<Ev[]> => eventsAt(root.httpPort, "?type=job_straggler");
  t.ok(await eventually(async () => (await stragglers()).length === 1, 15_000), "a job_straggler event");
  t.match((await stragglers())[0], { node: "n04", severity: "warning", labels: { job_id: "9", instance: "n04", user: "alice" }, details: { metric: "banyan_job_cpu_seconds_total", value: 0 } }, "n04 at 0 CPU-seconds a second…");
  t.ok(Math.abs(Number((await stragglers())[0]!.details?.["median"]) - 2) < 0.2, "…against the job's median, ~2");
  n04Works = true;
  t.ok(await eventually(async () => (await stragglers()).some((e) => e.details?.["recovered"] === true), 15_000), "it recovers once it works again");
  t.equal((await stragglers()).filter((e) => e.details?.["recovered"] !== true).length, 1, "reported once, not every scan");
});
