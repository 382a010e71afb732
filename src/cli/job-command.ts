import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, statSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command } from "commander";
import { applyOverrides, readYamlFile } from "../core/config-file.js";
import { parseAgentConfig } from "../agent/agent-config.js";
import { AGENT_NODE_FLAGS } from "../agent/node-flags.js";
import { hookRequest } from "../agent/slurm/hook-request.js";
import { subcommand } from "./subcommand.js";
import { jobReportCommand } from "./job-report-command.js";
import { jobMailCommand } from "./job-mail-command.js";

/** Slurm gives a prolog a couple of seconds at most; Banyan takes less and never fails it. */
const DEADLINE_MS = 1800;
const MAIN = fileURLToPath(new URL("./main.js", import.meta.url));

/**
 * `banyan job start` (prolog) and `banyan job end` (epilog). Both finish within ~2 s and always
 * exit 0: a prolog that fails drains the node, so Banyan says what went wrong on stderr and gets out
 * of the way. `start` starts the node's agent when none answers (detached; a lock file keeps two
 * concurrent prologs from starting two), then registers the job through the agent's control socket.
 */
export function jobCommand(): Command {
  const cmd = subcommand("job").description("Slurm prolog/epilog (register or end a job on this node's agent; always exit 0) and a job's report card");
  for (const op of ["start", "end"] as const) {
    cmd.addCommand(
      subcommand(op)
        .description(op === "start" ? "prolog: start the agent if needed and register the job" : "epilog: end the job (its report is written on the node)")
        .option("--config <yaml>", "agent config (default: $BANYAN_CONFIG, else /etc/banyan/agent.yaml)")
        .addHelpText(
          "after",
          `
Reads the job from Slurm's hook environment: SLURM_JOB_ID, SLURM_JOB_USER, SLURM_JOB_UID,
SLURM_JOB_GID, SLURM_JOB_PARTITION, SLURM_JOB_ACCOUNT (when set), SLURM_JOB_GPUS (when the job
has GPUs: their utilisation goes into its series and report), SLURM_JOB_EXIT_CODE (epilog).
Ready scripts: deploy/slurm/prolog and deploy/slurm/epilog.

Example:
  SLURM_JOB_ID=42 SLURM_JOB_USER=alice SLURM_JOB_UID=1001 banyan job ${op}`,
        )
        .action(async (flags: { config?: string }) => {
          try {
            const msg = await run(op, flags.config);
            if (msg !== "") process.stderr.write(`banyan job ${op}: ${msg}\n`);
          } catch (err) {
            process.stderr.write(`banyan job ${op}: ${(err as Error).message}\n`);
          }
          process.exit(0);
        }),
    );
  }
  cmd.addCommand(jobReportCommand());
  cmd.addCommand(jobMailCommand());
  return cmd;
}

async function run(op: "start" | "end", configFlag: string | undefined): Promise<string> {
  const deadline = Date.now() + DEADLINE_MS;
  const env = process.env;
  const hook = hookRequest(op, env, Date.now());
  if (hook === null) return "no SLURM_JOB_ID: not run by Slurm? nothing done";
  const { request, problem } = hook;
  const said = problem === "" ? "" : `${problem}; `;
  const path = configFlag ?? env["BANYAN_CONFIG"] ?? "/etc/banyan/agent.yaml";
  if (!existsSync(path)) return `${said}no agent config at ${path}: nothing done`;
  const cfg = parseAgentConfig(applyOverrides(readYamlFile(path), ["jobs.enabled=true"]), path);
  let started = false;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const reply = await ask(cfg.jobs.controlSocket, request, deadline - Date.now());
      return said + (reply["ok"] === true ? "" : `the agent refused: ${String(reply["error"])}`);
    } catch (err) {
      last = (err as Error).message;
      if (!started && op === "start") {
        started = true;
        startAgent(path, cfg.jobs.runDir);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  // An agent still starting (two prologs at once, a loaded node) takes it from the spool when it is up.
  const spool = join(cfg.jobs.runDir, "spool");
  mkdirSync(spool, { recursive: true, mode: 0o700 });
  writeFileSync(join(spool, `${Date.now()}-${request.jobId}-${op}.json`), JSON.stringify(request) + "\n", { mode: 0o600 });
  return `${said}the agent did not answer within ${DEADLINE_MS} ms (${last}): the request waits in ${spool} for it`;
}

function ask(socket: string, request: object, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = connect(socket);
    let buf = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error("timeout"));
    }, Math.max(50, timeoutMs));
    s.on("connect", () => s.write(JSON.stringify(request) + "\n"));
    s.on("data", (c) => (buf += c.toString("utf8")));
    s.on("end", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buf) as Record<string, unknown>);
      } catch {
        reject(new Error("bad reply"));
      }
    });
    s.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * Starts the agent detached, logging to <runDir>/agent.log. The lock (<runDir>/agent-start.lock,
 * created exclusively) lets one of two concurrent prologs start it; a lock older than 10 s is stale.
 */
function startAgent(config: string, runDir: string): void {
  mkdirSync(runDir, { recursive: true });
  const lock = join(runDir, "agent-start.lock");
  try {
    if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 10_000) unlinkSync(lock);
    const fd = openSync(lock, "wx");
    writeSync(fd, String(process.pid));
    closeSync(fd);
  } catch {
    return; // another prolog is starting it
  }
  const log = openSync(join(runDir, "agent.log"), "a");
  const child = spawn(process.execPath, [...AGENT_NODE_FLAGS, MAIN, "agent", "--config", config, "--set", "jobs.enabled=true"], { detached: true, stdio: ["ignore", log, log] });
  child.unref();
  closeSync(log);
}
