import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { eventually, startCluster, type TestCluster } from "../fixtures/cluster.js";

/**
 * A receiver behind TLS with its own CA's certificate for "receiver.test": the root that trusts
 * that CA and names the server writes; one with the system's CAs, and one expecting another name,
 * are refused by TLS — no answer, retried and counted, never a crash.
 */
t.test("remote_write - TLS: the site's CA and server name are checked; a mismatch is no answer, retried and counted", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-tls-"));
  const openssl = (args: string[]): void => {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
  };
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=Banyan test CA"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=receiver.test"]);
  writeFileSync(join(dir, "ext.cnf"), "subjectAltName=DNS:receiver.test\n");
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"]);
  let accepted = 0;
  const server = createServer({ key: readFileSync(join(dir, "server.key")), cert: readFileSync(join(dir, "server.pem")) }, (req, res) => {
    req.resume();
    req.on("end", () => {
      accepted++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => void server.close());
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/write`;
  const q = { concurrency: 1, batchDeadlineMs: 100, maxBackoffMs: 200 };
  const c: TestCluster = await startCluster({
    nodes: "t[1-2]",
    roots: "r1",
    trees: 1,
    basePort: 25000,
    series: 10,
    rootConfig: {
      remoteWrite: [
        { url, tls: { caFile: join(dir, "ca.pem"), serverName: "receiver.test" }, queue: q },
        { url: url.replace("/api/v1/write", "/system-cas"), queue: q },
        { url: url.replace("/api/v1/write", "/wrong-name"), tls: { caFile: join(dir, "ca.pem"), serverName: "other.test" }, queue: q },
      ],
    },
  });
  t.teardown(() => c.stop());
  const self = async (): Promise<string> => c.roots[0]!.registry.metrics();
  const line = (text: string, re: RegExp): number => Number(text.split("\n").find((l) => re.test(l))?.split(" ").pop() ?? 0);
  t.ok(await eventually(async () => line(await self(), /^banyan_remote_write_samples_sent_total\{url="https:\/\/127\.0\.0\.1:\d+\/api\/v1\/write"\}/) > 0, 20_000), "the root that trusts the CA and names the server writes");
  t.ok(await eventually(async () => line(await self(), /^banyan_remote_write_requests_total\{url="[^"]+system-cas",code="0"\}/) >= 2, 20_000), "system CAs only: refused by TLS, retried");
  t.ok(await eventually(async () => line(await self(), /^banyan_remote_write_requests_total\{url="[^"]+wrong-name",code="0"\}/) >= 2, 20_000), "another server name: refused by TLS, retried");
  t.equal(line(await self(), /^banyan_remote_write_samples_sent_total\{url="[^"]+(system-cas|wrong-name)"\}/), 0, "nothing counted as sent where TLS failed");
  t.ok(accepted > 0);
  t.match(await c.roots[0]!.render(), /instance="t1"/, "the root keeps serving");
});
