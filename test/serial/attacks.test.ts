import { create, toBinary } from "@bufbuild/protobuf";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { readTopologyFile } from "../../src/topology/topology-file.js";
import { FrameKind, FrameSchema, UpSchema, type Frame } from "../../src/gen/banyan/v1/uplink_pb.js";
import { DeltaEncoder } from "../../src/series/delta-encoder.js";
import { SeriesType, seriesDef } from "../../src/series/series-def.js";
import { encodePayload } from "../../src/wire/payload-codec.js";
import { UPLINK_STREAM_PATH } from "../../src/wire/uplink-grpc.js";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep } from "../fixtures/cluster.js";
import { httpText, startBanyan, type Started } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

/**
 * The attack suite: a hostile child, a hostile scraper and a hostile local user against real
 * daemons (a root and five agents, processes on 127.0.0.1), each with the outcome it must have:
 * refused and counted, the root's memory bounded, the honest nodes fresh. Root RSS before and after
 * each attack is printed (the figures in the note). Heavier variants are the bench's.
 */
const BASE = 32100;
const dir = mkdtempSync(join(tmpdir(), "banyan-attacks-"));
const topo = join(dir, "topology.json");

const rssMb = (pid: number): number => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;
const grpcFrame = (b: Uint8Array): Buffer => Buffer.concat([Buffer.from([0, b.length >>> 24, (b.length >>> 16) & 255, (b.length >>> 8) & 255, b.length & 255]), b]);
const up = (msg: Parameters<typeof create<typeof UpSchema>>[1]): Buffer => grpcFrame(toBinary(UpSchema, create(UpSchema, msg)));

/** A raw HTTP/2 gRPC stream to a tree port: a child that sends whatever it likes. */
function rawChild(port: number, settings: http2.Settings = {}): { req: http2.ClientHttp2Stream; session: http2.ClientHttp2Session; closed: Promise<void> } {
  const session = http2.connect(`http://127.0.0.1:${port}`, { settings });
  session.on("error", () => undefined);
  const req = session.request({ ":method": "POST", ":path": UPLINK_STREAM_PATH, "content-type": "application/grpc", te: "trailers" });
  req.on("error", () => undefined);
  req.on("data", () => undefined);
  const closed = new Promise<void>((resolve) => req.once("close", resolve));
  return { req, session, closed };
}

function frameOf(origin: string, seq: bigint, enc: DeltaEncoder): Frame {
  const f = enc.encode()!;
  const w = encodePayload(f.payload);
  return create(FrameSchema, { origin, epoch: 7n, seq, timeMs: BigInt(Date.now()), kind: f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA, codec: w.codec, payload: w.bytes });
}

t.test("attacks - a hostile child, scraper and local user against a root and five agents: refused and counted, memory bounded, honest nodes fresh", async (t) => {
  const gen = banyan(["topology", "generate", "--nodes", "n[1-6]", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]);
  t.equal(gen.status, 0, `topology generated ${gen.status === 0 ? "" : gen.stderr}`);
  const topology = readTopologyFile(topo);
  // The attacker claims a leaf whose agent does not run (without tree.tls a name is all it takes;
  // the tree-tls test shows a certificate closing that door).
  const leaves = [...topology.nodes].filter(([, n]) => n.children.length === 0).map(([name]) => name);
  const evil = leaves[leaves.length - 1]!;
  const honest = [...topology.nodes.keys()].filter((n) => n !== evil);
  const root = startBanyan([
    "root", "--topology", topo, "--name", "r1",
    "--set", "tree.handshakeTimeoutMs=1500", "--set", "tree.maxConnectionsPerAddress=64",
    "--set", "web.maxConnections=24", "--set", "web.sendTimeoutMs=3000", "--set", "web.idleTimeoutMs=2000", "--set", "log.level=error",
  ]);
  const agents: Started[] = [];
  const pushPort = BASE + 90;
  t.teardown(async () => {
    for (const a of agents) await a.stop();
    await root.stop();
  });
  for (const n of honest) {
    const jobs = n === honest[0] ? ["--set", "jobs.enabled=true", "--set", `jobs.runDir=${join(dir, "run")}`, "--set", `jobs.controlSocket=${join(dir, "run/agent.sock")}`, "--set", `jobs.reportDir=${join(dir, "reports")}`, "--set", "jobs.cgroupRoot=/nonexistent", "--set", `jobs.pushListen=127.0.0.1:${pushPort}`] : [];
    agents.push(startBanyan(["agent", "--topology", topo, "--name", n, "--source", "synthetic", "--set", "synthetic.series=100", "--set", "log.level=error", ...jobs]));
  }
  const rootHttp = `http://${topology.roots[0]!.http}`;
  const rootPort = Number(topology.roots[0]!.address.split(":")[1]);
  const page = async (): Promise<string> => (await httpText(`${rootHttp}/metrics`)).text;
  const allFresh = async (): Promise<boolean> => {
    const p = await page();
    return honest.every((n) => new RegExp(`^banyan_node_up\\{instance="${n}",root="r1"\\} 1$`, "m").test(p));
  };
  t.ok(await eventually(allFresh, 30_000, 250), `the ${honest.length} honest nodes are up`);
  const rss0 = rssMb(root.proc.pid!);
  const figures: string[] = [`root RSS at rest: ${rss0.toFixed(0)} MB`];
  const counter = (p: string, name: string, labels = ""): number => Number(new RegExp(`^${name}${labels.replace(/[{}]/g, "\\$&")} (\\S+)$`, "m").exec(p)?.[1] ?? 0);

  // --- A hostile child -------------------------------------------------------------------------
  await t.test("child: a string table grown by DELTA frames is refused at its bound; the root lives", async (t) => {
    const { req, session } = rawChild(rootPort);
    t.teardown(() => session.destroy());
    req.write(up({ msg: { case: "hello", value: { node: evil, tree: 0, epoch: 7n, version: "x" } } }));
    const enc = new DeltaEncoder();
    enc.set(enc.define(seriesDef("seed", {}, SeriesType.Gauge)), 1);
    req.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [frameOf(evil, 1n, enc)], alive: [] } } }));
    // Each DELTA adds 1,000 strings of 4,000 characters (4 M characters, ~20 KB of lz4): before,
    // ~16 MB of these killed a root.
    for (let k = 0; k < 40; k++) {
      const strings = Array.from({ length: 1000 }, (_, j) => `${k}-${j}-`.padEnd(4000, "x"));
      const payload = encodePayload({ strings, defs: [], gone: [], ids: [], vals: [], rawIds: [], rawVals: new Uint8Array(0) });
      const frame = create(FrameSchema, { origin: evil, epoch: 7n, seq: BigInt(k + 2), timeMs: BigInt(Date.now()), kind: FrameKind.DELTA, codec: payload.codec, payload: payload.bytes });
      req.write(up({ msg: { case: "batch", value: { linkSeq: BigInt(k + 2), frames: [frame], alive: [] } } }));
      await sleep(20);
    }
    t.ok(await eventually(async () => counter(await page(), "banyan_root_decode_errors_total") >= 1, 10_000, 250), "past the bound, refused as a bad frame (and counted)");
    const rss = rssMb(root.proc.pid!);
    figures.push(`root RSS after 40 × 4 M characters of string-table DELTAs: ${rss.toFixed(0)} MB`);
    t.ok(rss - rss0 < 300, `root RSS ${rss0.toFixed(0)} → ${rss.toFixed(0)} MB (an origin's table is bounded at 8 M characters)`);
    t.ok(await allFresh(), "the honest nodes stayed up");
  });

  await t.test("child: another node's origin is refused and counted", async (t) => {
    const { req, session } = rawChild(rootPort);
    t.teardown(() => session.destroy());
    req.write(up({ msg: { case: "hello", value: { node: evil, tree: 0, epoch: 8n, version: "x" } } }));
    const enc = new DeltaEncoder();
    enc.set(enc.define(seriesDef("node_load1", {}, SeriesType.Gauge)), 999);
    req.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [frameOf(honest[0]!, 1_000_000n, enc)], alive: [] } } }));
    t.ok(await eventually(async () => counter(await page(), "banyan_relay_frames_rejected_total", '{reason="foreign_origin"}') >= 1, 5000, 200), "refused: foreign_origin");
    t.notMatch(await page(), new RegExp(`node_load1\\{[^}]*instance="${honest[0]}"[^}]*\\} 999`), "never applied");
  });

  await t.test("child: a family given another TYPE and HELP by a hostile node: one # TYPE line, the lie left off the page, and promtool parses it", async (t) => {
    const { req, session } = rawChild(rootPort);
    t.teardown(() => session.destroy());
    req.write(up({ msg: { case: "hello", value: { node: evil, tree: 0, epoch: 20n, version: "x" } } }));
    const p0 = await page();
    const honestFamily = /^# TYPE (node_\w+) gauge$/m.exec(p0)?.[1];
    t.ok(honestFamily !== undefined, `an honest gauge family on the page (${honestFamily})`);
    const enc = new DeltaEncoder();
    enc.set(enc.define(seriesDef(`${honestFamily}`, { lie: "1" }, SeriesType.Counter, { help: "Lies." })), 1);
    enc.set(enc.define(seriesDef("evil_histogram_count", {}, SeriesType.Gauge)), 1);
    req.write(up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [{ ...frameOf(evil, 1n, enc), epoch: 20n }], alive: [] } } }));
    t.ok(await eventually(async () => counter(await page(), "banyan_root_family_conflicts") >= 1, 5000, 200), "the conflicting origin is counted");
    const p = await page();
    t.equal((p.match(new RegExp(`^# TYPE ${honestFamily} `, "gm")) ?? []).length, 1, "one # TYPE line");
    t.match(p, new RegExp(`^# TYPE ${honestFamily} gauge$`, "m"), "the honest nodes' type");
    t.notMatch(p, /lie="1"/, "the lie is not on the page");
    const check = spawnSync(requireProgram("promtool"), ["check", "metrics"], { input: p, encoding: "utf8" });
    t.not(check.status, 1, `promtool parses the page (exit ${check.status}: 3 is lint warnings only) ${check.status === 1 ? check.stderr.slice(0, 300) : ""}`);
  });

  await t.test("child: one that never reads its acks has its connection closed", async (t) => {
    const { req, session, closed } = rawChild(rootPort, { initialWindowSize: 0 });
    t.teardown(() => session.destroy());
    req.write(up({ msg: { case: "hello", value: { node: evil, tree: 0, epoch: 9n, version: "x" } } }));
    const burst = Buffer.concat(Array.from({ length: 500 }, () => up({ msg: { case: "batch", value: { linkSeq: 1n, frames: [], alive: [] } } })));
    let ended = false;
    void closed.then(() => (ended = true));
    for (let k = 0; k < 200 && !ended; k++) {
      req.write(burst);
      await sleep(5);
    }
    await Promise.race([closed, sleep(10_000)]);
    t.ok(ended, "closed");
    t.ok(counter(await page(), "banyan_tree_connections_refused_total", '{reason="acks_not_read"}') >= 1, "counted: acks_not_read");
  });

  await t.test("child: idle connections past the per-address cap are refused, the rest closed after the handshake timeout", async (t) => {
    const socks: net.Socket[] = [];
    t.teardown(() => socks.forEach((s) => s.destroy()));
    for (let k = 0; k < 100; k++) {
      const s = net.connect(rootPort, "127.0.0.1");
      s.on("error", () => undefined);
      s.resume();
      socks.push(s);
    }
    await sleep(300);
    const p = await page();
    t.ok(counter(p, "banyan_tree_connections_refused_total", '{reason="too_many_from_address"}') >= 30, "past 64 from one address: refused");
    t.ok(await eventually(async () => counter(await page(), "banyan_tree_connections") < 30, 6000, 250), "no Hello within 1.5 s: closed");
    t.ok(await allFresh(), "the honest nodes stayed up");
  });

  // --- A hostile scraper -----------------------------------------------------------------------
  await t.test("scraper: requests that never read are cut at the send timeout; connections are capped; an honest scrape gets through after", async (t) => {
    const socks: net.Socket[] = [];
    t.teardown(() => socks.forEach((s) => s.destroy()));
    const [host, port] = topology.roots[0]!.http.split(":");
    for (let k = 0; k < 60; k++) {
      const s = net.connect(Number(port), host!);
      s.on("error", () => undefined);
      s.on("connect", () => s.write("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
      s.pause(); // never reads: the page stays in the root's send buffer
      socks.push(s);
    }
    await sleep(1000);
    const during = rssMb(root.proc.pid!);
    figures.push(`root RSS with 60 scrapers that never read: ${during.toFixed(0)} MB`);
    t.ok(await eventually(async () => (await httpText(`${rootHttp}/metrics`)).status === 200, 15_000, 500), "an honest scrape gets its page once the stalled ones are cut");
    t.ok(during - rss0 < 300, `root RSS ${rss0.toFixed(0)} → ${during.toFixed(0)} MB`);
    t.ok(await allFresh(), "the honest nodes stayed up");
  });

  // --- A hostile local user (the push API of an agent) -----------------------------------------
  await t.test("local user: pushes that would write the node's own series, or more than the wire carries, are refused; the node's own series stay", async (t) => {
    const push = async (path: string, body: string): Promise<number> => (await fetch(`http://127.0.0.1:${pushPort}${path}`, { method: "PUT", body }).catch(() => ({ status: 0 }) as Response)).status;
    t.ok(await eventually(async () => (await push("/metrics/job/app", "app_work_total 1\n")) === 200, 10_000, 200), "an honest push");
    t.equal(await push("/metrics/job/evil", "banyan_job_cpu_seconds_total 1e12\n"), 400, "the root's job accounting: refused");
    t.equal(await push("/metrics/job/evil", 'banyan_node_parent_info{parent="x"} 1\n'), 400, "the node's place in the tree: refused");
    t.equal(await push("/metrics/job/synthetic", "app_x 1\n"), 400, "the node's own job (a synthetic agent's): refused");
    t.equal(await push("/metrics/job/evil", `bomb{v="${"x".repeat(5000)}"} 1\n`), 400, "a label the wire cannot carry: refused");
    t.ok(await eventually(async () => new RegExp(`^app_work_total\\{job="app",instance="${honest[0]}"\\} 1$`, "m").test(await page()), 10_000, 250), "the honest push reaches the root");
    t.ok(await allFresh(), "the node (and every honest node) stays up");
  });

  figures.push(`root RSS at the end: ${rssMb(root.proc.pid!).toFixed(0)} MB`);
  t.comment(figures.join("\n"));
  const code = await root.stop();
  t.equal(code, 0, "the root survived every attack and exits cleanly");
});
