import { Registry } from "prom-client";
import { readTopologyFile } from "../src/topology/topology-file.js";
import { parseAgentConfig } from "../src/agent/index.js";
import { startAgent } from "../src/agent/index.js";
import type { NodeDaemon } from "../src/node/index.js";
import { silentLogger } from "../src/core/logger.js";
import { treeTlsFiles } from "./bench-tls.js";

/**
 * A worker process (forked by the bench) hosting real relays: each is a real agent (sampler with
 * the synthetic source + relay) as an interior node of the trees would run. Messages over IPC:
 *   → {type: "start", topology, relays, intervalMs, series, changeRate, precision, seed}   ← {type: "started"}
 *   → {type: "stats"}   ← {type: "stats", forwarded, children, cpu, rss, failoverAtMs, failovers, parents}
 *   → {type: "kill", names}   ← {type: "killed"}   (stopped at once, no drain: a crash as the network sees it)
 */
interface StartMessage {
  type: "start";
  topology: string;
  relays: string[];
  intervalMs: number;
  series: number;
  changeRate: number;
  precision: number;
  seed: number;
  /** Mutual TLS on the tree: the directory of `banyan certs` (ca.crt, <name>.crt, <name>.key), or null. */
  tlsDir: string | null;
}

const agents = new Map<string, NodeDaemon>();
let failoverAtMs = 0;
let watching: NodeJS.Timeout | null = null;

async function sum(metric: string, label?: [string, string]): Promise<number> {
  let n = 0;
  for (const a of agents.values()) {
    const m = a.registry.getSingleMetric(metric);
    if (m === undefined) continue;
    for (const v of (await m.get()).values) if (label === undefined || v.labels[label[0]] === label[1]) n += v.value;
  }
  return n;
}

// The bench is gone (however it died): so is this worker, and its ports with it.
process.once("disconnect", () => process.exit(0));

process.on("message", (raw: unknown) => {
  const msg = raw as { type: string };
  void (async () => {
    if (msg.type === "start") {
      const m = raw as StartMessage;
      const topology = readTopologyFile(m.topology);
      const log = silentLogger();
      for (const name of m.relays) {
        const cfg = parseAgentConfig({
          source: "synthetic",
          intervalMs: m.intervalMs,
          synthetic: { series: m.series, changeRate: m.changeRate, seed: m.seed },
          precision: [{ match: "*", relative: m.precision, absolute: 0 }],
          ...(m.tlsDir !== null ? { tree: { tls: treeTlsFiles(m.tlsDir, name) } } : {}),
        });
        agents.set(name, await startAgent({ topology, topologySource: m.topology, name, log, registry: new Registry() }, cfg));
      }
      process.send!({ type: "started" });
    } else if (msg.type === "stats") {
      process.send!({
        type: "stats",
        forwarded: await sum("banyan_relay_frames_received_total"),
        children: await sum("banyan_relay_children"),
        cpu: process.cpuUsage(),
        rss: process.memoryUsage().rss,
        failoverAtMs,
        failovers: await sum("banyan_uplink_failovers_total"),
        // Where each relay's uplink is attached now ("" while it is not ready).
        parents: Object.fromEntries([...agents].map(([name, a]) => [name, a.relay.uplink.state === "ready" ? a.relay.uplink.currentTarget.name : ""])),
      });
    } else if (msg.type === "kill") {
      const names = (raw as { names: string[] }).names;
      const before = await sum("banyan_uplink_transitions_total", ["to", "failing-over"]);
      await Promise.all(names.filter((n) => agents.has(n)).map((n) => agents.get(n)!.stop(0)));
      for (const n of names) agents.delete(n);
      // Note when the first surviving relay here notices a dead parent.
      watching ??= setInterval(() => {
        void sum("banyan_uplink_transitions_total", ["to", "failing-over"]).then((now) => {
          if (now > before && failoverAtMs === 0) failoverAtMs = Date.now();
        });
      }, 10);
      process.send!({ type: "killed" });
    } else if (msg.type === "stop") {
      if (watching) clearInterval(watching);
      for (const a of [...agents.values()].reverse()) await a.stop(0);
      process.exit(0);
    }
  })();
});
