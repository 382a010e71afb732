import { spawnSync } from "node:child_process";

/** Runs `ip` (or another tool) and throws with what it printed when it fails. */
export function run(cmd: string, args: readonly string[], input?: string): string {
  const r = spawnSync(cmd, args, { input, encoding: "utf8" });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: exit ${r.status}: ${(r.stderr || r.stdout).trim().split("\n").slice(0, 5).join("; ")}`);
  return r.stdout;
}
