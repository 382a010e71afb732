import { connect, type Socket } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Registry } from "prom-client";
import t from "tap";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { writeTopologyFile } from "../../src/topology/topology-file.js";
import { startRoot } from "../../src/root/root-daemon.js";
import { silentLogger } from "../../src/core/logger.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { eventually } from "../fixtures/cluster.js";

/**
 * Slow clients against the root's HTTP port (issue 36, item 6): connections that send their request
 * headers a line every second and never finish, from 20 addresses of this machine (127.0.0.2-21, an
 * attacker's own hosts), more than web.maxConnections together; meanwhile a scraper from 127.0.0.1
 * scrapes. Before, 2,000 such connections held all 256 slots for the 60 s of Node's headersTimeout and
 * 113 of 192 scrapes failed.
 */
const BASE = 32100;

function slow(port: number, from: string, sockets: Socket[]): void {
  const s = connect({ port, host: "127.0.0.1", localAddress: from });
  s.on("error", () => undefined);
  s.on("connect", () => {
    s.write("GET /metrics HTTP/1.1\r\nHost: r1\r\n");
    const drip = setInterval(() => (s.destroyed ? clearInterval(drip) : s.write(`X-Slow-${Date.now()}: 1\r\n`)), 1000);
    drip.unref();
  });
  sockets.push(s);
}

t.test("http - slowloris from 20 addresses: scrapes still answered, each address capped, slow headers closed", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-slowloris-"));
  const { topology } = generateTopology({ nodes: ["n1"], roots: ["r1"], trees: 1, local: BASE });
  const topo = join(dir, "t.json");
  writeTopologyFile(topo, topology);
  const registry = new Registry();
  const root = await startRoot({ topology, topologySource: topo, name: "r1", log: silentLogger(), registry }, parseRootConfig({ intervalMs: 500 }));
  const sockets: Socket[] = [];
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await root.stop();
  });
  const port = root.httpPort;
  // 20 addresses × 20 connections: 400, past the 256 slots; each address is held to 32.
  for (let a = 2; a <= 21; a++) for (let k = 0; k < 20; k++) slow(port, `127.0.0.${a}`, sockets);
  // One address alone, 60 connections: 32 held, the rest closed at once.
  const one: Socket[] = [];
  for (let k = 0; k < 60; k++) slow(port, "127.0.0.99", one);
  sockets.push(...one);
  let ok = 0;
  let failed = 0;
  for (let i = 0; i < 40; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
      await res.text();
      if (res.status === 200) ok++;
      else failed++;
    } catch {
      failed++;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.comment(`scrapes during the attack: ${ok} answered, ${failed} failed`);
  t.equal(failed, 0, "every scrape answered while 460 slow connections came in");
  const refused = async (reason: string): Promise<number> => {
    const m = (await registry.getSingleMetric("banyan_http_connections_refused_total")?.get())?.values.find((v) => v.labels["reason"] === reason);
    return m?.value ?? 0;
  };
  t.ok(await eventually(async () => (await refused("per_address")) >= 28, 10_000, 200), `one address past its 32 refused (${await refused("per_address")})`);
  t.ok(await eventually(async () => (await refused("headers_timeout")) > 0, 20_000, 250), "slow headers closed after web.headersTimeoutMs");
  t.ok(await eventually(() => one.filter((s) => !s.destroyed).length === 0, 20_000, 250), "every slow connection of one address closed in the end");
});
