import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { expandHostlist } from "../../topology/hostlist.js";
import { parseGpuList } from "../gpu-readings.js";

/*
 * What the agent asks Slurm of a job, and how it reads the answers: scontrol's one-line output
 * (partition, account, this node's GPUs and CPUs, time limit, nodes), the job of a SLUID, and where
 * Slurm's commands are (the hooks get no PATH).
 */

/** What Slurm says of a job: where it runs and on which GPUs of this node. */
export interface SlurmJobFacts {
  readonly partition: string;
  readonly account: string;
  readonly gpus: readonly string[];
  /** CPUs on this node (its CPU_IDs), when scontrol said. */
  readonly cpus?: number;
  /** The job's time limit (TimeLimit), when it has one. */
  readonly timeLimitS?: number;
  /** Its nodes (NodeList, a hostlist) and how many (NumNodes). */
  readonly nodelist?: string;
  readonly nodes?: number;
}

/** scontrol where Slurm's hooks find it (they get no PATH): PATH, then the usual places. */
export function findScontrol(dirs = [...(process.env["PATH"] ?? "").split(":").filter((d) => d !== ""), "/usr/bin", "/usr/local/bin", "/opt/slurm/bin"]): string {
  for (const d of dirs) if (existsSync(join(d, "scontrol"))) return join(d, "scontrol");
  return "scontrol";
}

const run = promisify(execFile);

/** Another Slurm command beside the scontrol found (or by its name on PATH, where scontrol was). */
export function slurmCommand(scontrol: string, name: string): string {
  return scontrol.includes("/") ? join(dirname(scontrol), name) : name;
}

/** Asks `scontrol show job -d -o <id>` (5 s at most); null when it fails. */
export function scontrolFacts(bin: string, node = hostname().split(".")[0]!): (jobId: string) => Promise<SlurmJobFacts | null> {
  return async (jobId) => {
    const { stdout } = await run(bin, ["show", "job", "-d", "-o", jobId], { timeout: 5000, maxBuffer: 1024 * 1024 });
    return parseScontrolJob(stdout, jobId, node);
  };
}

/**
 * The job id of a SLUID: the jobs squeue lists on this node, each asked of `scontrol show job -d -o`
 * until one says `SLUID=<it>` (Slurm prints the SLUID with -d). A few calls, only for a job with a
 * cgroup that no prolog registered.
 */
export function sluidJobOf(scontrol: string, node = hostname().split(".")[0]!): (sluid: string) => Promise<string | null> {
  const squeue = slurmCommand(scontrol, "squeue");
  return async (sluid) => {
    const { stdout } = await run(squeue, ["-h", "-w", node, "-o", "%i"], { timeout: 5000, maxBuffer: 1024 * 1024 });
    for (const id of stdout.split("\n").map((l) => l.trim()).filter((l) => /^\d+(_\d+)?$/.test(l)).slice(0, 256)) {
      const { stdout: job } = await run(scontrol, ["show", "job", "-d", "-o", id], { timeout: 5000, maxBuffer: 1024 * 1024 });
      if (new RegExp(`(?:^|\\s)SLUID=${sluid}(?:\\s|$)`, "i").test(job)) return /(?:^|\s)JobId=(\d+)/.exec(job)?.[1] ?? null;
    }
    return null;
  };
}

/**
 * Partition, account and this node's GPUs of a job from `scontrol show job -d -o` (one line of
 * `Key=Value` words; the per-node detail `Nodes=<hostlist> CPU_IDs=… Mem=… GRES=gpu:…(IDX:2-3)`).
 * Null when the output is not that job's.
 */
export function parseScontrolJob(text: string, jobId: string, node: string): SlurmJobFacts | null {
  const field = (k: string): string | undefined => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(text)?.[1];
  if (field("JobId") !== jobId) return null;
  const clean = (v: string | undefined): string => (v === undefined || v === "(null)" ? "" : v);
  let gpus: string[] = [];
  const details = [...text.matchAll(/(?:^|\s)Nodes=(\S+) CPU_IDs=\S* Mem=\S* GRES=(\S*)/g)];
  const mine = details.length === 1 ? details[0] : details.find((d) => expandHostlist(d[1]!).includes(node));
  const idx = mine === undefined ? undefined : /gpu[^,(]*\(IDX:([^)]*)\)/.exec(mine[2]!)?.[1];
  if (idx !== undefined && idx !== "N/A") {
    try {
      gpus = parseGpuList(idx);
    } catch {
      gpus = [];
    }
  }
  const cpuIds = mine === undefined ? undefined : /CPU_IDs=(\S+)/.exec(mine[0])?.[1];
  let cpus: number | undefined;
  try {
    cpus = cpuIds === undefined ? undefined : parseGpuList(cpuIds).length || undefined;
  } catch {
    cpus = undefined;
  }
  const timeLimitS = slurmDuration(field("TimeLimit") ?? "");
  const nodelist = clean(field("NodeList"));
  const nodes = Number(field("NumNodes"));
  return {
    partition: clean(field("Partition")),
    account: clean(field("Account")),
    gpus,
    ...(cpus !== undefined ? { cpus } : {}),
    ...(timeLimitS !== null ? { timeLimitS } : {}),
    ...(nodelist !== "" && nodelist.length <= MAX_NODELIST ? { nodelist } : {}),
    ...(Number.isInteger(nodes) && nodes > 0 ? { nodes } : {}),
  };
}

/** The facts a registration carries beyond who and where: time limit and nodes. */
export function slurmExtras(facts: SlurmJobFacts | null): { timeLimitS?: number; nodes?: number; nodelist?: string } {
  if (facts === null) return {};
  return { ...(facts.timeLimitS !== undefined ? { timeLimitS: facts.timeLimitS } : {}), ...(facts.nodes !== undefined ? { nodes: facts.nodes } : {}), ...(facts.nodelist !== undefined ? { nodelist: facts.nodelist } : {}) };
}

/** A job's nodelist longer than this is not carried (it travels as a label). */
export const MAX_NODELIST = 1024;

/**
 * Seconds of a Slurm duration (`TimeLimit`): `[days-]hours:minutes:seconds`, `minutes:seconds`,
 * `minutes`, `days-hours[:minutes]`; null for UNLIMITED, Partition_Limit, N/A or anything else.
 */
export function slurmDuration(text: string): number | null {
  const m = /^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$/.exec(text.trim());
  if (m === null) return null;
  const [days, a, b, c] = [m[1], m[2], m[3], m[4]].map((x) => (x === undefined ? undefined : Number(x)));
  // With days: days-hours[:minutes[:seconds]]; without: [hours:]minutes:seconds, or minutes alone.
  const s = days !== undefined ? days * 86_400 + a! * 3600 + (b ?? 0) * 60 + (c ?? 0) : c !== undefined ? a! * 3600 + b! * 60 + c : b !== undefined ? a! * 60 + b : a! * 60;
  return Number.isFinite(s) ? s : null;
}
