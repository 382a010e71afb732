import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { AGENT_NODE_FLAGS } from "../src/agent/index.js";
import { generateTopology } from "../src/tools/topology/index.js";
import { writeTopologyFile } from "../src/topology/topology-file.js";
import { waitHttp } from "./bench-cluster.js";
import { peakRss, processStats } from "./process-stats.js";

/**
 * The agent's own cost with every collector on: a real `banyan agent` (procfs) under a real
 * `banyan root`, measured from /proc over a window after a warm-up; with `--busy`, while two CPU
 * burners and a disk writer run. With `--node-exporter`, Debian's prometheus-node-exporter in the
 * same run, scraped every 1 s and then every 15 s over windows of the same length, so the agent's
 * cost stands beside the program it replaces.
 *
 *   node dist/bench/agent-figures.js [seconds] [--warmup-s N] [--busy] [--node-exporter]
 *        [--set key=value ...] [--node-flags "<flags for the agent's node>"]
 *
 * `--set` goes to the agent as it is (e.g. `--set 'procfs.disable=[hwmon]'`), to measure one change.
 */
const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const argv = process.argv.slice(2);
const valueOf = (flag: string): string | undefined => argv[argv.indexOf(flag) + 1];
const seconds = Number(argv.find((a, i) => /^\d+$/.test(a) && !argv[i - 1]?.startsWith("--")) ?? 60);
const warmupS = Number(argv.includes("--warmup-s") ? valueOf("--warmup-s") : 15);
const busy = argv.includes("--busy");
const withNodeExporter = argv.includes("--node-exporter");
/** The agent's Node flags: as installed (src/agent/node-flags.ts), unless `--node-flags` names others ("" for none). */
const nodeFlags = argv.includes("--node-flags") ? (valueOf("--node-flags") ?? "").split(/\s+/).filter((x) => x !== "") : [...AGENT_NODE_FLAGS];
const sets = argv.flatMap((a, i) => (argv[i - 1] === "--set" ? ["--set", a] : []));
const PORT = 30500;
const NE_PORT = PORT + 40;

const dir = mkdtempSync(join(tmpdir(), "banyan-agent-fig-"));
const topo = join(dir, "t.json");
writeTopologyFile(topo, generateTopology({ nodes: ["n1"], roots: ["r1"], trees: 1, local: PORT }).topology);
const root = spawn(process.execPath, [MAIN, "root", "--config", "/dev/null", "--topology", topo, "--name", "r1", "--set", "log.level=warn"], { stdio: "ignore" });
const agent = spawn(process.execPath, [...nodeFlags, MAIN, "agent", "--config", "/dev/null", "--topology", topo, "--name", "n1", "--set", "log.level=warn", ...sets], { stdio: "ignore" });
// Waited for at the end even when one has died already (once() after the fact would wait forever).
const exits = [once(root, "exit"), once(agent, "exit")];
const others: ChildProcess[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const self = async (): Promise<Map<string, number>> => {
  const text = await fetch(`http://127.0.0.1:${PORT + 1}/api/v1/self`).then((r) => r.text());
  return new Map(text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]));
};
const mb = (b: number): string => (b / 2 ** 20).toFixed(0);

/** CPU and memory of `pid` over `s` seconds of 1 s ticks (or scrapes). */
async function window(pid: number, s: number, during?: () => Promise<void>): Promise<string> {
  const a = processStats(pid);
  const stop = Date.now() + s * 1000;
  if (during !== undefined) await during();
  await sleep(Math.max(0, stop - Date.now()));
  const b = processStats(pid);
  const pct = ((b.cpuS - a.cpuS) / s) * 100;
  return `CPU ${pct.toFixed(2)} % of one core (user ${(((b.userS - a.userS) / s) * 100).toFixed(2)}, system ${(((b.systemS - a.systemS) / s) * 100).toFixed(2)}) = ${(((b.cpuS - a.cpuS) / s) * 1000).toFixed(1)} ms a second, on a core ${((b.slices - a.slices) / s).toFixed(2)} times a second (its main thread ${((b.mainSlices - a.mainSlices) / s).toFixed(2)}, other threads ${((b.slices - b.mainSlices - (a.slices - a.mainSlices)) / s).toFixed(2)}); RSS ${mb(b.rssBytes)} MB (anonymous ${mb(b.rssAnonBytes)}, file ${mb(b.rssFileBytes)}; peak ${mb(peakRss(pid))})`;
}

try {
  await waitHttp(`http://127.0.0.1:${PORT + 1}/-/ready`, 20_000);
  await sleep(warmupS * 1000);
  if (busy) {
    for (let k = 0; k < 2; k++) others.push(spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
    others.push(spawn("sh", ["-c", `while :; do dd if=/dev/zero of=${dir}/fill bs=1M count=64 conv=fdatasync 2>/dev/null; done`], { stdio: "ignore" }));
    await sleep(3000);
  }
  const m0 = await self();
  const line = await window(agent.pid!, seconds);
  const m1 = await self();
  const nodes = (await fetch(`http://127.0.0.1:${PORT + 1}/api/v1/nodes`).then((r) => r.json())) as { series: number }[];
  const payload = (m1.get("banyan_relay_payload_bytes_received_total") ?? 0) - (m0.get("banyan_relay_payload_bytes_received_total") ?? 0);
  const frames = (m1.get("banyan_relay_frames_received_total") ?? 0) - (m0.get("banyan_relay_frames_received_total") ?? 0);
  console.log(`agent, all collectors, 1 s interval, ${busy ? "busy machine (2 CPU burners + a disk writer)" : "idle machine"}, ${seconds} s after ${warmupS} s of warm-up${nodeFlags.length > 0 ? `, node ${nodeFlags.join(" ")}` : ""}:`);
  console.log(`  series ${nodes[0]?.series ?? "?"}; ${line}`);
  console.log(`  wire: ${(payload / seconds).toFixed(0)} B payload + ${((frames * 35) / seconds).toFixed(0)} B envelope per interval (${frames} frames in ${seconds} ticks)`);
  if (withNodeExporter) {
    const ne = spawn("prometheus-node-exporter", [`--web.listen-address=127.0.0.1:${NE_PORT}`, "--no-collector.systemd"], { stdio: "ignore" });
    others.push(ne);
    await waitHttp(`http://127.0.0.1:${NE_PORT}/metrics`, 20_000);
    await sleep(warmupS * 1000);
    let bytes = 0;
    const scrapeEvery = (everyMs: number) => async (): Promise<void> => {
      const until = Date.now() + seconds * 1000;
      while (Date.now() < until) {
        // A scrape as Prometheus asks it: gzip accepted.
        const r = await fetch(`http://127.0.0.1:${NE_PORT}/metrics`, { headers: { "accept-encoding": "gzip" } });
        bytes += (await r.arrayBuffer()).byteLength;
        await sleep(Math.max(0, everyMs - (Date.now() % everyMs)));
      }
    };
    for (const everyS of [1, 15]) {
      bytes = 0;
      const l = await window(ne.pid!, seconds, scrapeEvery(everyS * 1000));
      console.log(`node_exporter (Debian), scraped every ${everyS} s, ${seconds} s: ${l}; ${(bytes / seconds).toFixed(0)} B a second to the scraper`);
    }
  }
} finally {
  for (const l of others) l.kill("SIGKILL");
  agent.kill("SIGTERM");
  root.kill("SIGTERM");
  await Promise.race([Promise.all(exits), sleep(15_000)]);
  rmSync(dir, { recursive: true, force: true });
}
