import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { decompress as zstdDecompress } from "fzstd";
import { uncompressSync } from "snappy";
import t from "tap";
import { parseRootConfig } from "../../src/root/root-config.js";
import { eventually, startCluster, type TestCluster } from "../fixtures/cluster.js";
import { decodeWriteRequest } from "../fixtures/write-request-reader.js";

/**
 * A receiver scripted to answer what a real one answers when in trouble (no real Prometheus can be
 * made to): 500, 429 with Retry-After, 400. The root retries the first two with the same request
 * and drops the 400's request for good, counting it.
 */
function scriptedReceiver(script: number[], v2 = false): { server: Server; bodies: string[]; statuses: number[]; contentTypes: string[]; auths: string[]; samples: () => number; url: () => string } {
  const bodies: string[] = [];
  const statuses: number[] = [];
  const contentTypes: string[] = [];
  const auths: string[] = [];
  let samples = 0;
  const server = createServer((req, res) => {
    if (req.method === "GET") {
      // VictoriaMetrics' zstd probe, answered as VictoriaMetrics 1.79 does: it knows only snappy.
      res.writeHead(400).end("cannot decompress request with length 0: snappy: corrupt input");
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      bodies.push(createHash("sha1").update(body).digest("hex"));
      contentTypes.push(req.headers["content-type"] ?? "");
      auths.push(`${req.headers["authorization"] ?? ""} ${req.headers["x-amz-date"] ?? ""} ${req.headers["x-amz-security-token"] ?? ""}`.trim());
      const status = script.shift() ?? 204;
      statuses.push(status);
      const headers: Record<string, string> = status === 429 ? { "Retry-After": "1" } : {};
      if (status === 204 && req.headers["content-type"]?.includes("io.prometheus.write.v2.Request")) {
        // A 2.0 receiver: it says how many samples it wrote.
        const n = countV2Series(uncompressSync(body) as Buffer);
        if (v2) headers["X-Prometheus-Remote-Write-Samples-Written"] = String(n);
        samples += v2 ? n : 0;
      } else if (status === 204) samples += decodeWriteRequest(uncompressSync(body) as Buffer).series.length;
      // (A 400 that is not about some samples' times: the whole request is bad, it is not split.)
      res.writeHead(status, headers).end(status === 400 ? "invalid label name" : "");
    });
  });
  server.listen(0, "127.0.0.1");
  return { server, bodies, statuses, contentTypes, auths, samples: () => samples, url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write` };
}

/** Waits until every server listens; closes them when the test ends. */
async function listening(t: { teardown(fn: () => void): void }, ...servers: Server[]): Promise<void> {
  await Promise.all(servers.map((s) => (s.listening ? Promise.resolve() : new Promise((r) => s.once("listening", r)))));
  t.teardown(() => {
    for (const s of servers) s.close();
  });
}

/** TimeSeries (field 5) in a 2.0 request. */
function countV2Series(body: Uint8Array): number {
  const r = new BinaryReader(body);
  let n = 0;
  while (r.pos < r.len) {
    const [f, wt] = r.tag();
    if (f === 5) n++;
    r.skip(wt);
  }
  return n;
}

const metric = async (c: TestCluster, pattern: RegExp): Promise<number> => {
  const text = await c.roots[0]!.registry.metrics();
  return text.split("\n").filter((l) => pattern.test(l)).reduce((s, l) => s + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
};

t.test("remote_write - 500 and 429 are retried with the same request, a 400 is dropped and counted, never resent", async (t) => {
  const rx = scriptedReceiver([500, 429, 204, 400]);
  await new Promise((r) => rx.server.once("listening", r));
  t.teardown(() => void rx.server.close());
  const c = await startCluster({
    nodes: "w[1-4]",
    roots: "r1",
    trees: 1,
    basePort: 25400,
    series: 30,
    rootConfig: { remoteWrite: [{ url: rx.url(), queue: { concurrency: 1, batchDeadlineMs: 100, minBackoffMs: 50, maxBackoffMs: 200 } }] },
  });
  t.teardown(() => c.stop());
  t.ok(await eventually(() => rx.statuses.length >= 8, 20_000), "the receiver got requests past its troubles");
  t.same(rx.statuses.slice(0, 4), [500, 429, 204, 400]);
  t.equal(rx.bodies[1], rx.bodies[0], "the request a 500 refused is sent again as it was");
  t.equal(rx.bodies[2], rx.bodies[0], "and again after the 429");
  const refused = rx.bodies[3]!;
  t.equal(rx.bodies.slice(4).filter((b) => b === refused).length, 0, "the request a 400 refused is never sent again");
  t.ok((await metric(c, /^banyan_remote_write_samples_retried_total/)) > 0, "retries counted");
  t.ok((await metric(c, /^banyan_remote_write_samples_failed_total\{.*reason="status_400"/)) > 0, "the 400's samples counted as failed, by status");
  t.ok((await metric(c, /^banyan_remote_write_samples_sent_total/)) >= rx.samples() - 1, "accepted samples counted as sent");
});

t.test("remote_write - a request refused whole for one node's out-of-order samples is sent again in halves: only that node's series are lost", async (t) => {
  // As Prometheus does: one sample it cannot take (here every sample of s2) rolls the whole request back.
  const accepted = new Map<string, number>();
  let refusedRequests = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const w = decodeWriteRequest(uncompressSync(Buffer.concat(chunks)) as Buffer);
      if (w.series.some((x) => x.labels.some(([n, v]) => n === "instance" && v === "s2"))) {
        refusedRequests++;
        res.writeHead(400).end("out of order sample");
        return;
      }
      for (const x of w.series) {
        const inst = x.labels.find(([n]) => n === "instance")?.[1] ?? "";
        accepted.set(inst, (accepted.get(inst) ?? 0) + x.samples.length);
      }
      res.writeHead(204).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await listening(t, server);
  const c = await startCluster({
    nodes: "s[1-4]",
    roots: "r1",
    trees: 1,
    basePort: 25500,
    series: 40,
    rootConfig: { remoteWrite: [{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`, rootSeriesIntervalMs: 0, metadataIntervalMs: 0, queue: { concurrency: 1, batchDeadlineMs: 200 } }] },
  });
  t.teardown(() => c.stop());
  t.ok(await eventually(() => ["s1", "s3", "s4"].every((n) => (accepted.get(n) ?? 0) >= 80), 20_000), `the other nodes' samples get through (${JSON.stringify(Object.fromEntries(accepted))})`);
  t.notOk(accepted.has("s2"), "s2's never do");
  t.ok(refusedRequests > 0, `${refusedRequests} requests refused`);
  t.ok((await metric(c, /^banyan_remote_write_requests_split_total/)) > 0, "requests split");
  const failed = await metric(c, /^banyan_remote_write_samples_failed_total\{.*reason="status_400"/);
  t.ok(failed > 0, `s2's samples counted lost (${failed})`);
  const sent = await metric(c, /^banyan_remote_write_samples_sent_total/);
  t.equal(sent, [...accepted.values()].reduce((a, b) => a + b, 0), "what the root counts sent is what the receiver took");
});

t.test("remote_write - an unreachable receiver: the root keeps running, its queue stays within maxBytes and counts what it drops", async (t) => {
  const c = await startCluster({
    nodes: "u[1-6]",
    roots: "r1",
    trees: 1,
    basePort: 25600,
    series: 60,
    rootConfig: { remoteWrite: [{ url: "http://127.0.0.1:9/api/v1/write", queue: { maxBytes: 4096, batchDeadlineMs: 100, maxSamplesPerSend: 50, maxBackoffMs: 200 } }] },
  });
  t.teardown(() => c.stop());
  t.ok(await eventually(async () => (await metric(c, /^banyan_remote_write_samples_failed_total\{.*reason="queue_full"/)) > 0, 20_000), "oldest requests dropped and counted");
  t.ok((await metric(c, /^banyan_remote_write_queue_bytes/)) <= 4096, "queue within maxBytes");
  t.ok((await metric(c, /^banyan_remote_write_requests_total\{.*code="0"/)) > 0, "no answer counted as status 0");
  t.match(await c.roots[0]!.render(), /instance="u1"/, "the root still serves its page");
});

t.test("remote_write - protocol 2.0 to a 2.0 receiver stays 2.0; auto to a receiver without the Written header falls back to 1.0 and resends", async (t) => {
  const rx2 = scriptedReceiver([], true);
  const rx1 = scriptedReceiver([]);
  await listening(t, rx2.server, rx1.server);
  const q = { concurrency: 1, batchDeadlineMs: 100 };
  const c = await startCluster({
    nodes: "p[1-3]",
    roots: "r1",
    trees: 1,
    basePort: 25800,
    series: 20,
    rootConfig: { remoteWrite: [{ url: rx2.url(), protocol: "2.0", queue: q }, { url: rx1.url(), protocol: "auto", queue: q }] },
  });
  t.teardown(() => c.stop());
  t.ok(await eventually(() => rx2.samples() > 60 && rx1.samples() > 60, 20_000), "both receivers got samples");
  t.ok(rx2.contentTypes.every((ct) => ct === "application/x-protobuf;proto=io.prometheus.write.v2.Request"), "2.0 throughout to the 2.0 receiver");
  t.equal(rx1.contentTypes[0], "application/x-protobuf;proto=io.prometheus.write.v2.Request", "auto tries 2.0 first");
  t.equal(rx1.contentTypes[1], "application/x-protobuf", "then 1.0, for good");
  t.equal(rx1.bodies.slice(1).filter((b) => b === rx1.bodies[0]).length, 0, "the first request is sent again as 1.0, not as it was");
  t.ok(rx1.contentTypes.slice(1).every((ct) => ct === "application/x-protobuf"));
  t.notMatch(await c.roots[0]!.registry.metrics(), /reason="(not_written|status_\d+)"/, "nothing counted as lost");
});

t.test("remote_write - sigv4 signs every request, with static keys or from the AWS credential chain (here: the environment, with a session token)", async (t) => {
  const rxStatic = scriptedReceiver([]);
  const rxChain = scriptedReceiver([]);
  await listening(t, rxStatic.server, rxChain.server);
  const saved = { ...process.env };
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: "AKIDFROMENV", AWS_SECRET_ACCESS_KEY: "secret", AWS_SESSION_TOKEN: "session-token-1" });
  t.teardown(() => {
    for (const k of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]) if (saved[k] === undefined) delete process.env[k];
  });
  const q = { concurrency: 1, batchDeadlineMs: 100 };
  const c = await startCluster({
    nodes: "s[1-2]",
    roots: "r1",
    trees: 1,
    basePort: 25200,
    series: 10,
    rootConfig: {
      remoteWrite: [
        { url: rxStatic.url(), sigv4: { region: "eu-west-1", accessKey: "AKIDSTATIC", secretKey: "s" }, queue: q },
        { url: rxChain.url(), sigv4: { region: "us-east-2" }, queue: q },
      ],
    },
  });
  t.teardown(() => c.stop());
  t.ok(await eventually(() => rxStatic.samples() > 0 && rxChain.samples() > 0, 20_000), "both receivers got samples");
  t.ok(rxStatic.auths.every((a) => /^AWS4-HMAC-SHA256 Credential=AKIDSTATIC\/\d{8}\/eu-west-1\/aps\/aws4_request, SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64} \d{8}T\d{6}Z$/.test(a)), rxStatic.auths[0]);
  t.ok(rxChain.auths.every((a) => /^AWS4-HMAC-SHA256 Credential=AKIDFROMENV\/\d{8}\/us-east-2\/aps\/aws4_request, SignedHeaders=[a-z0-9;-]*x-amz-security-token[a-z0-9;-]*, Signature=[0-9a-f]{64} \d{8}T\d{6}Z session-token-1$/.test(a)), rxChain.auths[0]);
});

t.test("remote_write - zstd: to a receiver that answers VictoriaMetrics' probe with 1, zstd-compressed 1.0 requests; to one that does not, snappy", async (t) => {
  const got: { encoding: string; series: number }[] = [];
  const server = createServer((req, res) => {
    if (req.method === "GET") {
      res.writeHead(req.url?.includes("get_vm_proto_version=1") ? 200 : 400).end(req.url?.includes("get_vm_proto_version=1") ? "1" : "");
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const encoding = req.headers["content-encoding"] ?? "";
      // An independent zstd decoder (fzstd) reads what the root compressed.
      const plain = encoding === "zstd" ? Buffer.from(zstdDecompress(body)) : (uncompressSync(body) as Buffer);
      got.push({ encoding, series: decodeWriteRequest(plain).series.length });
      res.writeHead(204).end();
    });
  });
  const snappyOnly = scriptedReceiver([]);
  server.listen(0, "127.0.0.1");
  await listening(t, server, snappyOnly.server);
  const q = { concurrency: 2, batchDeadlineMs: 100 };
  const c = await startCluster({
    nodes: "z[1-3]",
    roots: "r1",
    trees: 1,
    basePort: 24800,
    series: 20,
    rootConfig: {
      remoteWrite: [
        { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`, compression: "zstd", queue: q },
        { url: snappyOnly.url(), compression: "zstd", queue: q },
      ],
    },
  });
  t.teardown(() => c.stop());
  t.ok(await eventually(() => got.reduce((n, g) => n + g.series, 0) > 60 && snappyOnly.samples() > 60, 20_000), "both receivers got samples");
  t.ok(got.every((g) => g.encoding === "zstd"), "zstd to the receiver that takes it");
  t.ok(snappyOnly.bodies.length > 0, "snappy to the one that does not (its samples decoded as snappy above)");
});

t.test("remote_write - a reload that changes a receiver with a queue on disk hands the queue over: what was queued before it arrives once the receiver is back", async (t) => {
  let open = false;
  const times: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (!open || req.method === "GET") return void res.writeHead(503).end("away");
      for (const s of decodeWriteRequest(uncompressSync(Buffer.concat(chunks)) as Buffer).series) times.push(...s.samples.map((x) => x.ts));
      res.writeHead(204).end();
    });
  });
  server.listen(0, "127.0.0.1");
  await listening(t, server);
  const dir = mkdtempSync(join(tmpdir(), "banyan-rw-reload-"));
  const rw = (refreshMs: number) => [{ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`, refreshMs, queue: { dir, batchDeadlineMs: 100, maxBackoffMs: 200 } }];
  const c = await startCluster({ nodes: "q[1-3]", roots: "r1", trees: 1, basePort: 24600, series: 20, rootConfig: { remoteWrite: rw(5000) } });
  t.teardown(() => c.stop());
  await new Promise((r) => setTimeout(r, 2500));
  const reloadAt = Date.now();
  c.roots[0]!.reload(parseRootConfig({ intervalMs: 200, remoteWrite: rw(3000) }), c.topology);
  await new Promise((r) => setTimeout(r, 1000));
  open = true;
  t.ok(await eventually(() => times.some((ts) => ts < reloadAt - 1000) && times.some((ts) => ts > reloadAt + 500), 20_000), "samples from before the reload (queued on disk by the old output) and after it");
  t.ok(await eventually(async () => /banyan_remote_write_queue_bytes\{[^}]*\} 0$/m.test(await c.roots[0]!.registry.metrics()), 20_000), "the queue drained");
});
