import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Registry } from "prom-client";
import { generateTopology } from "../src/tools/topology/index.js";
import { silentLogger } from "../src/core/logger.js";
import { AliveSchema, FrameKind, FrameSchema, UpSchema, type Alive, type Frame } from "../src/gen/banyan/v1/uplink_pb.js";
import { AlertmanagerOutput } from "../src/root/events/index.js";
import { EventLog } from "../src/root/events/index.js";
import { parseRootConfig } from "../src/root/index.js";
import { startRoot } from "../src/root/index.js";
import { DeltaEncoder } from "../src/series/delta-encoder.js";
import { SeriesType, seriesDef } from "../src/series/series-def.js";
import { encodePayload } from "../src/wire/payload-codec.js";
import { UPLINK_STREAM_PATH } from "../src/wire/uplink-grpc.js";

/**
 * Events at a root: how many a second the event log and an Alertmanager output take (in process),
 * and, with a real root and a real Alertmanager (`prometheus-alertmanager` on PATH), how long after
 * 5 % of a cluster goes silent at once the notification reaches Alertmanager's webhook receiver,
 * and in how many notifications (one alert group, not one per node).
 *
 *   node dist/bench/events-figures.js [nodes=2000]
 */
const nodes = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), "banyan-events-fig-"));
const BASE = 30950;

// 1. The event log and an Alertmanager output, in process: events a second.
{
  const events = new EventLog("r1", new Registry(), 10_000);
  const out = new AlertmanagerOutput([{ url: "http://127.0.0.1:1", timeoutMs: 100, match: {} }], 60_000, "http://root/api/v1/status", silentLogger(), new Registry());
  out.start(events);
  const n = 200_000;
  const t0 = performance.now();
  for (let k = 0; k < n; k++) events.emit(k % 2 === 0 ? "node_down" : "node_up", { node: `n${k % 50_000}`, labels: { instance: `n${k % 50_000}`, tree: "0" }, moment: k });
  const ms = performance.now() - t0;
  out.stop();
  console.log(`event log + Alertmanager output: ${Math.round(n / (ms / 1000))} events a second (${n} in ${ms.toFixed(0)} ms, ${((ms * 1000) / n).toFixed(1)} µs an event)`);
}

// 2. A real root and Alertmanager: 5 % of the nodes silent at once.
const names = Array.from({ length: nodes }, (_, k) => `n${String(k).padStart(5, "0")}`);
const { topology } = generateTopology({ nodes: names, roots: ["r1"], trees: 1, local: BASE });
const got: { at: number; alerts: number }[] = [];
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (c: Buffer) => (body += c.toString()));
  req.on("end", () => {
    const n = JSON.parse(body) as { status: string; alerts: { status: string }[] };
    got.push({ at: Date.now(), alerts: n.alerts.filter((a) => a.status === "firing").length });
    res.writeHead(200).end();
  });
});
await new Promise<void>((r) => receiver.listen(BASE + 99, "127.0.0.1", () => r()));
writeFileSync(join(dir, "am.yml"), `route:\n  receiver: ops\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: http://127.0.0.1:${BASE + 99}/\n`);
const am = spawn("prometheus-alertmanager", [`--config.file=${join(dir, "am.yml")}`, `--storage.path=${join(dir, "am")}`, `--web.listen-address=127.0.0.1:${BASE + 98}`, "--cluster.listen-address="], { stdio: "ignore" });
const root = await startRoot(
  { topology, topologySource: "bench", name: "r1", log: silentLogger(), registry: new Registry() },
  parseRootConfig({ intervalMs: 1000, deadAfterMs: 3000, events: { startupMs: 1000, alertmanagers: [{ url: `http://127.0.0.1:${BASE + 98}` }] } }),
);
try {
  for (let k = 0; k < 100; k++) {
    if ((await fetch(`http://127.0.0.1:${BASE + 98}/-/ready`).then((r) => r.status).catch(() => 0)) === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  // The root's children carry their subtrees: one raw stream each, every node's keyframe, then alive records each second.
  const Raw = grpc.makeGenericClientConstructor(
    { Stream: { path: UPLINK_STREAM_PATH, requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
    "Uplink",
  );
  const top = topology.roots[0]!;
  const children = [...topology.nodes].filter(([, n]) => n.parent === top.name).map(([name]) => name);
  const under = (c: string): string[] => [c, ...topology.nodes.get(c)!.children.flatMap(under)];
  const silent = new Set(names.filter((_, k) => k % 20 === 7)); // 5 %
  let quiet = false;
  const streams = children.map((c) => {
    const client = new Raw(`127.0.0.1:${root.grpcPort}`, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
    call.on("data", () => undefined);
    call.on("error", () => undefined);
    call.write(Buffer.from(toBinary(UpSchema, create(UpSchema, { msg: { case: "hello", value: { node: c, tree: 0, epoch: 1n, version: "bench" } } }))));
    return { client, call, origins: under(c) };
  });
  let linkSeq = 0n;
  const send = (call: grpc.ClientDuplexStream<Buffer, Buffer>, frames: Frame[], alive: Alive[]): void => {
    for (let k = 0; k < Math.max(frames.length, alive.length); k += 2000) {
      call.write(Buffer.from(toBinary(UpSchema, create(UpSchema, { msg: { case: "batch", value: { linkSeq: ++linkSeq, frames: frames.slice(k, k + 2000), alive: alive.slice(k, k + 2000) } } }))));
    }
  };
  for (const s of streams) {
    send(
      s.call,
      s.origins.map((o) => {
        const e = new DeltaEncoder();
        for (let j = 0; j < 5; j++) e.set(e.define(seriesDef(`m_${j}`, { job: "bench" }, SeriesType.Gauge)), j);
        const w = encodePayload(e.encode()!.payload);
        return create(FrameSchema, { origin: o, epoch: 1n, seq: 1n, timeMs: BigInt(Date.now()), kind: FrameKind.KEY, codec: w.codec, payload: w.bytes });
      }),
      [],
    );
  }
  const beat = setInterval(() => {
    for (const s of streams) send(s.call, [], s.origins.filter((o) => !(quiet && silent.has(o))).map((o) => create(AliveSchema, { origin: o, epoch: 1n, seq: 1n, timeMs: BigInt(Date.now()) })));
  }, 1000);
  for (let k = 0; k < 200 && [...root.store.originStates].filter((o) => o.up).length < nodes; k++) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 3000));
  quiet = true;
  const silencedAt = Date.now();
  let downAt = 0;
  for (let k = 0; k < 300; k++) {
    const down = [...silent].filter((n) => root.store.origin(n)?.up === false).length;
    if (down === silent.size && downAt === 0) downAt = Date.now();
    if (downAt > 0 && got.some((g) => g.alerts >= silent.size)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  clearInterval(beat);
  const lastAt = got.length > 0 ? got[got.length - 1]!.at : NaN;
  console.log(
    `${silent.size} of ${nodes} nodes silent at once: all down at the root after ${downAt - silencedAt} ms (deadAfterMs 3000), ` +
      `Alertmanager's webhook got ${got.length} notification(s) of the one alert group (the group's firing alerts: ${got.map((g) => g.alerts).join(", ")}), the whole group ${lastAt - downAt} ms after the root marked them down`,
  );
  for (const s of streams) {
    s.call.end();
    s.client.close();
  }
} finally {
  await root.stop();
  am.kill("SIGTERM");
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
