import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { Registry } from "prom-client";
import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { writeTopologyFile } from "../../src/topology/topology-file.js";
import { makeCertificates } from "../../src/tools/certs/certificates.js";
import { startAgent } from "../../src/agent/agent-daemon.js";
import { parseAgentConfig } from "../../src/agent/agent-config.js";
import { silentLogger } from "../../src/core/logger.js";
import { UpSchema } from "../../src/gen/banyan/v1/uplink_pb.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { startRoot } from "../../src/root/root-daemon.js";
import { UPLINK_STREAM_PATH } from "../../src/wire/uplink-grpc.js";
import { banyan, BANYAN_BIN, openCheckoutToOtherUsers } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";

const RawClient = grpc.makeGenericClientConstructor(
  { Stream: { path: UPLINK_STREAM_PATH, requestStream: true, responseStream: true, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } },
  "Uplink",
);

/** A stream to the root that says Hello as `node` over `credentials`; resolves with how it ended. */
function helloAs(t: Tap.Test, port: number, node: string, credentials: grpc.ChannelCredentials): Promise<string> {
  const client = new RawClient(`127.0.0.1:${port}`, credentials, { "grpc.ssl_target_name_override": "r1", "grpc.use_local_subchannel_pool": 1 });
  t.teardown(() => client.close());
  const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<Buffer, Buffer> }).Stream();
  call.on("data", () => undefined);
  call.write(Buffer.from(toBinary(UpSchema, create(UpSchema, { msg: { case: "hello", value: { node, tree: 0, epoch: 1n, version: "test" } } }))));
  return new Promise((resolve) => {
    call.on("error", (err: grpc.ServiceError) => resolve(`${grpc.status[err.code]}: ${err.details}`));
    call.on("end", () => resolve("ended"));
  });
}

t.test("tree TLS - with banyan certs' certificates the tree runs on mutual TLS; only a node's own certificate speaks for it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-tls-"));
  const { topology } = generateTopology({ nodes: ["n1", "n2", "n3", "n4"], roots: ["r1"], trees: 1, local: 23700 });
  const file = join(dir, "topology.json");
  writeTopologyFile(file, topology);
  const tls = join(dir, "tls");
  const made = await makeCertificates({ topology: file, out: tls, days: "30" });
  t.match(made, { caMade: true, made: 5, kept: 0 });
  t.match(await makeCertificates({ topology: file, out: tls, days: "30" }), { caMade: false, made: 0, kept: 5 }, "a second run keeps what is there");
  const other = join(dir, "other");
  await makeCertificates({ topology: file, out: other, days: "30" }); // another CA, same names
  const tlsOf = (name: string, base = tls) => ({ caFile: join(tls, "ca.crt"), certFile: join(base, `${name}.crt`), keyFile: join(base, `${name}.key`) });

  const ctx = (name: string) => ({ topology, topologySource: file, name, log: silentLogger(), registry: new Registry() });
  const rootConfig = parseRootConfig({ intervalMs: 200, tree: { tls: tlsOf("r1") } });
  const root = await startRoot(ctx("r1"), rootConfig);
  t.teardown(() => root.stop());
  const agents = [];
  for (const n of ["n1", "n2", "n3", "n4"]) agents.push(await startAgent(ctx(n), parseAgentConfig({ source: "synthetic", intervalMs: 200, tree: { tls: tlsOf(n) } })));
  t.teardown(async () => {
    for (const a of agents.reverse()) await a.stop(0);
  });
  t.ok(await eventually(() => ["n1", "n2", "n3", "n4"].every((n) => root.store.origin(n)?.up === true), 20_000), "every node up over mutual TLS, relays included");

  const ca = readFileSync(join(tls, "ca.crt"));
  const creds = (name: string, base = tls) => grpc.credentials.createSsl(ca, readFileSync(join(base, `${name}.key`)), readFileSync(join(base, `${name}.crt`)));
  t.match(await helloAs(t, root.grpcPort, "n1", creds("n3")), /certificate names n3, not n1/, "n3's certificate cannot say Hello as n1");
  const noCert = await helloAs(t, root.grpcPort, "n1", grpc.credentials.createSsl(ca));
  t.match(noCert, /UNAVAILABLE/, `no client certificate: no connection (${noCert.slice(0, 80)})`);
  const foreign = await helloAs(t, root.grpcPort, "n1", grpc.credentials.createSsl(ca, readFileSync(join(other, "n1.key")), readFileSync(join(other, "n1.crt"))));
  t.match(foreign, /UNAVAILABLE/, "a certificate of another CA: no connection");
  const plain = await helloAs(t, root.grpcPort, "n1", grpc.credentials.createInsecure());
  t.match(plain, /UNAVAILABLE/, "plain text: no connection");
  t.ok(["n1", "n2", "n3", "n4"].every((n) => root.store.origin(n)?.up === true), "the honest nodes were not disturbed");
  // Each mistake is counted by its reason at the root, not only a node shown down.
  const refusals = async (): Promise<Record<string, number>> => {
    const m = (await root.registry.getSingleMetric("banyan_tree_handshakes_refused_total")?.get())?.values ?? [];
    return Object.fromEntries(m.map((v) => [String(v.labels["reason"]), v.value]));
  };
  t.ok(await eventually(async () => Object.keys(await refusals()).length >= 4, 5000), `refusals counted: ${JSON.stringify(await refusals())}`);
  t.match(await refusals(), { name_mismatch: 1, no_certificate: 1, unknown_ca: 1, plaintext: 1 }, "by reason: a certificate naming another node, none, another CA's, plain text");
  // An agent started without tree.tls against the TLS root: counted as plaintext while it retries.
  const before = (await refusals())["plaintext"] ?? 0;
  const plainAgent = await startAgent(ctx("n2"), parseAgentConfig({ source: "synthetic", intervalMs: 200 }));
  t.ok(await eventually(async () => ((await refusals())["plaintext"] ?? 0) > before, 10_000), "an agent without TLS is a plaintext refusal at the root");
  await plainAgent.stop(0);
  // An agent that trusts another CA: it refuses the root's certificate, and counts it itself.
  const wrongCa = { caFile: join(other, "ca.crt"), certFile: join(tls, "n2.crt"), keyFile: join(tls, "n2.key") };
  const agentCtx = ctx("n2");
  const doubting = await startAgent(agentCtx, parseAgentConfig({ source: "synthetic", intervalMs: 200, tree: { tls: wrongCa } }));
  const agentRefusals = async (): Promise<Record<string, number>> => Object.fromEntries(((await agentCtx.registry.getSingleMetric("banyan_tree_handshakes_refused_total")?.get())?.values ?? []).map((v) => [String(v.labels["reason"]), v.value]));
  t.ok(await eventually(async () => ((await agentRefusals())["unknown_ca"] ?? 0) > 0, 10_000), `the agent counts the root's certificate as unknown_ca (${JSON.stringify(await agentRefusals())})`);
  // (The root cannot count that one: under TLS 1.3 its side of the handshake has completed when the child checks and leaves.)
  await doubting.stop(0);

  // Renewed certificates, read on reload (SIGHUP): new connections use them.
  await makeCertificates({ topology: file, out: tls, days: "60", force: true, names: "r1,n4", caCert: join(tls, "ca.crt"), caKey: join(tls, "ca.key") });
  root.reload(rootConfig, topology);
  await agents.pop()!.stop(0);
  agents.push(await startAgent(ctx("n4"), parseAgentConfig({ source: "synthetic", intervalMs: 200, tree: { tls: tlsOf("n4") } })));
  t.ok(await eventually(() => root.store.origin("n4")?.up === true && root.store.origin("n4")!.epoch > 0n, 20_000), "a node with a renewed certificate connects after the root reloaded");
  writeFileSync(join(tls, "r1.key"), "not a key");
  t.throws(() => root.reload(rootConfig, topology), /tree.tls.keyFile/, "a broken file on reload is refused, naming the key");
});

t.test("tree TLS - a certificate that does not name the daemon, or a key that is not its, is a config error", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-tls-"));
  const { topology } = generateTopology({ nodes: ["n1", "n2"], roots: ["r1"], trees: 1, local: 23750 });
  const file = join(dir, "topology.json");
  writeTopologyFile(file, topology);
  const tls = join(dir, "tls");
  await makeCertificates({ topology: file, out: tls, days: "30" });
  const ctx = () => ({ topology, topologySource: file, name: "r1", log: silentLogger(), registry: new Registry() });
  await t.rejects(startRoot(ctx(), parseRootConfig({ tree: { tls: { caFile: join(tls, "ca.crt"), certFile: join(tls, "n1.crt"), keyFile: join(tls, "n1.key") } } })), /names n1, not this daemon \(r1\)/);
  await t.rejects(startRoot(ctx(), parseRootConfig({ tree: { tls: { caFile: join(tls, "ca.crt"), certFile: join(tls, "r1.crt"), keyFile: join(tls, "n1.key") } } })), /is not the key of/);
  await t.rejects(startRoot(ctx(), parseRootConfig({ tree: { tls: { caFile: join(tls, "nope.crt"), certFile: join(tls, "r1.crt"), keyFile: join(tls, "r1.key") } } })), /tree.tls.caFile: .*nope.crt: ENOENT/);
});

// As root, as the suite runs (chown, and a daemon run as another user).
t.test("tree TLS - banyan certs --owner gives the keys to the daemon's user; a key it cannot read is an error naming who runs it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-tls-"));
  chmodSync(dir, 0o755);
  openCheckoutToOtherUsers(t);
  const { topology } = generateTopology({ nodes: ["n1"], roots: ["r1"], trees: 1, local: 23760 });
  const file = join(dir, "topology.json");
  writeTopologyFile(file, topology);
  const tls = join(dir, "tls");
  // As the README's recipe had it: keys root-owned, mode 600; the packaged root runs as another user (nobody here).
  await makeCertificates({ topology: file, out: tls, days: "30" });
  const asNobody = (): ReturnType<typeof spawnSync> =>
    // setpriv (util-linux) drops to the user with no supplementary groups, as systemd's User= does;
    // env -u: tap puts its process-info loader in NODE_OPTIONS, which would write to .tap/ as that user.
    spawnSync("env", ["-u", "NODE_OPTIONS", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, BANYAN_BIN, "root", "--topology", file, "--name", "r1", "--set", `tree.tls.caFile=${join(tls, "ca.crt")}`, "--set", `tree.tls.certFile=${join(tls, "r1.crt")}`, "--set", `tree.tls.keyFile=${join(tls, "r1.key")}`], { encoding: "utf8", timeout: 30_000 });
  const refused = asNobody();
  t.equal(refused.status, 2, `a config error (${String(refused.stderr).slice(0, 300)})`);
  t.match(String(refused.stderr), /tree\.tls\.keyFile: .*r1\.key: EACCES: not readable by user nobody \(uid 65534\): owned by uid 0 gid 0, mode 600.*--owner banyan/);
  // Run again with --owner: the kept certificates are given to the user too.
  const r = banyan(["certs", "--topology", file, "--out", tls, "--owner", "nobody"]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stderr, /0 certificates made, 2 kept, in .*, given to nobody/);
  t.equal(statSync(join(tls, "r1.key")).uid, 65534, "the key belongs to the daemon's user");
  t.equal(statSync(join(tls, "r1.key")).mode & 0o777, 0o600, "and stays mode 600");
  t.equal(statSync(join(tls, "ca.key")).uid, 0, "the CA's key stays root's");
  const bad = banyan(["certs", "--topology", file, "--out", tls, "--owner", "no-such-user-here"]);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--owner no-such-user-here: no user "no-such-user-here" on this host/);
});
