import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { generateTopology } from "../src/tools/topology/index.js";
import { writeTopologyFile } from "../src/topology/topology-file.js";
import { makeCertificates } from "../src/tools/certs/index.js";
import { FrameKind, FrameSchema, UpSchema } from "../src/gen/banyan/v1/uplink_pb.js";
import { DeltaEncoder } from "../src/series/delta-encoder.js";
import { SeriesType, seriesDef } from "../src/series/series-def.js";
import { encodePayload } from "../src/wire/payload-codec.js";
import { UPLINK_STREAM_PATH } from "../src/wire/uplink-grpc.js";
import { waitHttp } from "./bench-cluster.js";
import { processStats } from "./process-stats.js";

/**
 * What mutual TLS on the tree costs a root: the handshakes of N children connecting at once (wall
 * time until every Hello is acked, and the root's CPU), and the root's CPU per frame over TLS
 * against plain text, for the same frames from the same children. A real `banyan root` process;
 * the children are raw gRPC streams from this process (one connection each).
 *
 *   node dist/bench/tls-figures.js [children=1000] [frames per child=200]
 */
const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const children = Number(process.argv[2] ?? 1000);
const framesEach = Number(process.argv[3] ?? 200);
const dir = mkdtempSync(join(tmpdir(), "banyan-tls-fig-"));
const topo = join(dir, "t.json");
const names = Array.from({ length: children }, (_, k) => `c${String(k).padStart(5, "0")}`);
const { topology } = generateTopology({ nodes: names, roots: ["r1"], trees: 1, local: 30900 });
writeTopologyFile(topo, topology);
const t0 = Date.now();
await makeCertificates({ topology: topo, out: join(dir, "tls"), days: "2" });
const certMs = Date.now() - t0;

const Raw = grpc.makeGenericClientConstructor(
  { Stream: { path: UPLINK_STREAM_PATH, requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
  "Uplink",
);
const up = (msg: Parameters<typeof create<typeof UpSchema>>[1]): Buffer => Buffer.from(toBinary(UpSchema, create(UpSchema, msg)));

async function run(tls: boolean): Promise<{ connectMs: number; connectCpuS: number; cpuPerFrameUs: number }> {
  const sets = tls ? ["--set", `tree.tls.caFile=${dir}/tls/ca.crt`, "--set", `tree.tls.certFile=${dir}/tls/r1.crt`, "--set", `tree.tls.keyFile=${dir}/tls/r1.key`] : [];
  const root = spawn(process.execPath, ["--max-old-space-size=4096", MAIN, "root", "--config", "/dev/null", "--topology", topo, "--name", "r1", "--set", "log.level=error", "--set", `tree.maxConnectionsPerAddress=${children + 100}`, ...sets], { stdio: "ignore" });
  try {
    await waitHttp(`http://${topology.roots[0]!.http}/-/ready`, 30_000);
    const port = Number(topology.roots[0]!.address.split(":")[1]);
    const ca = tls ? readFileSync(join(dir, "tls/ca.crt")) : null;
    const calls: grpc.ClientDuplexStream<Buffer, Buffer>[] = [];
    const clients: grpc.Client[] = [];
    const c0 = processStats(root.pid!).cpuS;
    const s0 = Date.now();
    await Promise.all(
      names.map(
        (name) =>
          new Promise<void>((resolve, reject) => {
            const creds = tls ? grpc.credentials.createSsl(ca, readFileSync(join(dir, `tls/${name}.key`)), readFileSync(join(dir, `tls/${name}.crt`))) : grpc.credentials.createInsecure();
            const client = new Raw(`127.0.0.1:${port}`, creds, { "grpc.use_local_subchannel_pool": 1, ...(tls ? { "grpc.ssl_target_name_override": "r1" } : {}) });
            clients.push(client);
            const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
            calls.push(call);
            call.once("data", () => resolve());
            call.on("error", reject);
            call.write(up({ msg: { case: "hello", value: { node: name, tree: 0, epoch: 1n, version: "bench" } } }));
          }),
      ),
    );
    const connectMs = Date.now() - s0;
    const connectCpuS = processStats(root.pid!).cpuS - c0;
    // The same frames over each: a keyframe of 100 series, then deltas of 10 changed values.
    const encs = names.map(() => {
      const e = new DeltaEncoder();
      for (let k = 0; k < 100; k++) e.set(e.define(seriesDef(`m_${k}`, { job: "bench" }, SeriesType.Gauge)), k);
      return e;
    });
    let acked = 0;
    for (const c of calls) c.on("data", () => acked++);
    const c1 = processStats(root.pid!).cpuS;
    let sent = 0;
    for (let seq = 1; seq <= framesEach; seq++) {
      for (let k = 0; k < calls.length; k++) {
        const e = encs[k]!;
        if (seq > 1) for (let j = 0; j < 10; j++) e.set((seq * 7 + j * 13) % 100, seq * 1000 + j);
        const f = e.encode()!;
        const w = encodePayload(f.payload);
        const frame = create(FrameSchema, { origin: names[k]!, epoch: 1n, seq: BigInt(seq), timeMs: BigInt(Date.now()), kind: f.kind === "key" ? FrameKind.KEY : FrameKind.DELTA, codec: w.codec, payload: w.bytes });
        calls[k]!.write(up({ msg: { case: "batch", value: { linkSeq: BigInt(seq), frames: [frame], alive: [] } } }));
        sent++;
      }
      // Keep a few batches in flight per child, as a real child would.
      while (sent - acked > 4 * calls.length) await new Promise((r) => setTimeout(r, 5));
    }
    while (acked < sent) await new Promise((r) => setTimeout(r, 10));
    const cpuPerFrameUs = ((processStats(root.pid!).cpuS - c1) / sent) * 1e6;
    for (const c of calls) c.end();
    for (const c of clients) c.close();
    return { connectMs, connectCpuS, cpuPerFrameUs };
  } finally {
    root.kill("SIGKILL");
  }
}

const plain = await run(false);
const secure = await run(true);
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify(
    {
      children,
      framesEach,
      certificatesMs: certMs,
      plain,
      tls: secure,
      tlsExtraCpuPerFrameUs: secure.cpuPerFrameUs - plain.cpuPerFrameUs,
      tlsHandshakeCpuMsPerChild: (secure.connectCpuS * 1000) / children,
    },
    null,
    2,
  ),
);
process.exit(0);
