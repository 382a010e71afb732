import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { uncompressSync } from "snappy";
import t from "tap";
import { eventually, startCluster, type TestCluster } from "../fixtures/cluster.js";
import { decodeWriteRequest } from "../fixtures/write-request-reader.js";

/**
 * A receiver scripted to answer what a real one answers when in trouble (no real Prometheus can be
 * made to): 500, 429 with Retry-After, 400. The root retries the first two with the same request
 * and drops the 400's request for good, counting it.
 */
function scriptedReceiver(script: number[]): { server: Server; bodies: string[]; statuses: number[]; samples: () => number; url: () => string } {
  const bodies: string[] = [];
  const statuses: number[] = [];
  let samples = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      bodies.push(createHash("sha1").update(body).digest("hex"));
      const status = script.shift() ?? 204;
      statuses.push(status);
      if (status === 204) samples += decodeWriteRequest(uncompressSync(body) as Buffer).series.length;
      const headers: Record<string, string> = status === 429 ? { "Retry-After": "1" } : {};
      res.writeHead(status, headers).end(status === 400 ? "out of order sample" : "");
    });
  });
  server.listen(0, "127.0.0.1");
  return { server, bodies, statuses, samples: () => samples, url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write` };
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
