import { spawn } from "node:child_process";
import type { BenchOptions } from "../bench-options.js";
import { planBench } from "../bench-plan.js";
import { Lab, labUnavailable, removeStaleLabs, type LabState } from "./lab-hosts.js";
import { layLab, OPS_HOST } from "./lab-plan.js";

/** The environment variable that hands a lab to the bench process running inside it. */
export const LAB_STATE_ENV = "BANYAN_LAB_STATE";

/** The lab this process was started in (by `runOnLab`), or null. */
export function labFromEnv(): Lab | null {
  const raw = process.env[LAB_STATE_ENV];
  return raw === undefined || raw === "" ? null : Lab.attach(JSON.parse(raw) as LabState);
}

/**
 * `banyan bench --hosts netns`: removes what dead runs left, builds the lab for the bench's plan,
 * then runs the same bench command inside the lab's `ops` host (every scrape and API call of the
 * bench leaves from a lab host, never from this machine's own namespace). The lab is removed on
 * every way out: the bench's end, its crash, SIGINT, SIGTERM; a SIGKILL of this process leaves it
 * to the next run or `banyan bench --cleanup`. Resolves with the inner bench's exit code.
 */
export async function runOnLab(o: BenchOptions, say: (line: string) => void): Promise<number> {
  const why = labUnavailable();
  if (why !== null) throw new Error(`--hosts netns: ${why}`);
  const stale = removeStaleLabs();
  if (stale.length > 0) say(`lab: removed what dead runs left (${stale.join(", ")})`);
  const layout = layLab(planBench(o.nodes, o.trees, o.roots, o.maxRealRelays, o.basePort), o.basePort);
  const began = Date.now();
  const lab = Lab.create(layout.hosts);
  say(`lab ${lab.runId}: ${layout.hosts.length} hosts on ${lab.subnet} (${layout.racks.length} racks) in ${Date.now() - began} ms; a blackhole route for ${lab.subnet} here while it runs`);
  try {
    const [cmd, args] = lab.command(OPS_HOST, [process.execPath, ...process.execArgv, ...process.argv.slice(1)]);
    // An IPC channel: the inner bench stops (and its cluster with it) when this process is gone.
    const inner = spawn(cmd, args, { stdio: ["inherit", "inherit", "inherit", "ipc"], env: { ...process.env, [LAB_STATE_ENV]: JSON.stringify(lab.state) } });
    const forward = (signal: NodeJS.Signals): void => void inner.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    try {
      return await new Promise<number>((resolve) => inner.once("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" ? 130 : 143))));
    } finally {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
    }
  } finally {
    lab.destroy();
    say(`lab ${lab.runId}: removed`);
  }
}
