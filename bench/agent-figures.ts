import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { generateTopology } from "../topology/generate.js";
import { writeTopologyFile } from "../topology/topology-file.js";
import { waitHttp } from "./bench-cluster.js";
import { peakRss, processStats } from "./process-stats.js";

/**
 * The agent's own cost with every collector on: a real `banyan agent` (procfs) under a real
 * `banyan root`, measured from /proc over a window; with `--busy`, while two CPU burners and a disk
 * writer run, so the bytes per interval of a busy node show too.
 *
 *   node dist/bench/agent-figures.js [seconds] [--busy]
 */
const MAIN = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const seconds = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 60);
const busy = process.argv.includes("--busy");
const dir = mkdtempSync(join(tmpdir(), "banyan-agent-fig-"));
const topo = join(dir, "t.json");
writeTopologyFile(topo, generateTopology({ nodes: ["n1"], roots: ["r1"], trees: 1, local: 30500 }).topology);
const root = spawn(process.execPath, [MAIN, "root", "--topology", topo, "--name", "r1", "--set", "log.level=warn"], { stdio: "ignore" });
const agent = spawn(process.execPath, [MAIN, "agent", "--topology", topo, "--name", "n1", "--set", "log.level=warn"], { stdio: "ignore" });
const load: ChildProcess[] = [];
const self = async (): Promise<Map<string, number>> => {
  const text = await fetch("http://127.0.0.1:30501/api/v1/self").then((r) => r.text());
  return new Map(text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]));
};
try {
  await waitHttp("http://127.0.0.1:30501/-/ready", 20_000);
  await new Promise((r) => setTimeout(r, 5000));
  if (busy) {
    for (let k = 0; k < 2; k++) load.push(spawn("sh", ["-c", "while :; do :; done"], { stdio: "ignore" }));
    load.push(spawn("sh", ["-c", `while :; do dd if=/dev/zero of=${dir}/fill bs=1M count=64 conv=fdatasync 2>/dev/null; done`], { stdio: "ignore" }));
    await new Promise((r) => setTimeout(r, 3000));
  }
  const a0 = processStats(agent.pid!);
  const m0 = await self();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const a1 = processStats(agent.pid!);
  const m1 = await self();
  const nodes = (await fetch("http://127.0.0.1:30501/api/v1/nodes").then((r) => r.json())) as { series: number }[];
  const payload = (m1.get("banyan_relay_payload_bytes_received_total") ?? 0) - (m0.get("banyan_relay_payload_bytes_received_total") ?? 0);
  const frames = (m1.get("banyan_relay_frames_received_total") ?? 0) - (m0.get("banyan_relay_frames_received_total") ?? 0);
  const ticks = seconds; // 1 s interval
  console.log(`agent, all collectors, 1 s interval, ${busy ? "busy machine (2 CPU burners + a disk writer)" : "idle machine"}, ${seconds} s:`);
  console.log(`  series ${nodes[0]?.series ?? "?"}; CPU ${(((a1.cpuS - a0.cpuS) / seconds) * 100).toFixed(2)} % of one core = ${(((a1.cpuS - a0.cpuS) / ticks) * 1000).toFixed(1)} ms per tick; RSS ${(a1.rssBytes / 2 ** 20).toFixed(0)} MB (peak ${(peakRss(agent.pid!) / 2 ** 20).toFixed(0)} MB)`);
  console.log(`  wire: ${(payload / ticks).toFixed(0)} B payload + ${((frames * 35) / ticks).toFixed(0)} B envelope per interval (${frames} frames in ${ticks} ticks)`);
} finally {
  for (const l of load) l.kill("SIGKILL");
  agent.kill("SIGTERM");
  root.kill("SIGTERM");
  await Promise.all([once(agent, "exit"), once(root, "exit")]);
  rmSync(dir, { recursive: true, force: true });
}
