import { parseGpuList } from "../gpu-readings.js";
import type { ControlRequest } from "./control-server.js";

type SlurmEnv = Readonly<Record<string, string | undefined>>;
export type JobRequest = Exclude<ControlRequest, { op: "ping" }>;

/**
 * The control request a Slurm prolog (`start`) or epilog (`end`) environment stands for — the
 * variables slurmd gives its hooks (SLURM_JOB_ID, SLURM_JOB_USER, SLURM_JOB_UID, SLURM_JOB_GID,
 * SLURM_JOB_PARTITION, SLURM_JOB_ACCOUNT, SLURM_JOB_GPUS, SLURM_JOB_CPUS_PER_NODE, SLURM_JOB_NUM_NODES,
 * SLURM_NODELIST, SLURM_JOB_SLUID, SLURM_JOB_EXIT_CODE), which a job's own
 * processes carry too. `problem` says what had to be left out; null without SLURM_JOB_ID.
 */
export function hookRequest(op: "start" | "end", env: SlurmEnv, atMs: number): { request: JobRequest; problem: string } | null {
  const jobId = env["SLURM_JOB_ID"];
  if (jobId === undefined) return null;
  if (op === "end") {
    const exitCode = env["SLURM_JOB_EXIT_CODE"];
    return { request: { op: "job-end", jobId, ...(exitCode !== undefined ? { exitCode } : {}), atMs }, problem: "" };
  }
  let gpus: string[] = [];
  let problem = "";
  try {
    gpus = parseGpuList(env["SLURM_JOB_GPUS"] ?? "");
  } catch (err) {
    problem = `${(err as Error).message}: the job is registered without its GPUs`;
  }
  const gid = env["SLURM_JOB_GID"];
  // "4" or "4(x2),2": the first group's count (a job with uneven CPUs per node reports the first node's).
  const cpus = Number(/^(\d+)/.exec(env["SLURM_JOB_CPUS_PER_NODE"] ?? "")?.[1] ?? NaN);
  const nodes = Number(env["SLURM_JOB_NUM_NODES"] ?? NaN);
  // slurmd gives its prolog SLURM_NODELIST, slurmctld's SLURM_JOB_NODELIST; a very long one is left to scontrol.
  const nodelist = env["SLURM_JOB_NODELIST"] ?? env["SLURM_NODELIST"] ?? "";
  return {
    request: {
      op: "job-start",
      jobId,
      user: env["SLURM_JOB_USER"] ?? "unknown",
      uid: env["SLURM_JOB_UID"] ?? "0",
      ...(gid !== undefined && gid !== "" ? { gid } : {}),
      partition: env["SLURM_JOB_PARTITION"] ?? "",
      account: env["SLURM_JOB_ACCOUNT"] ?? "",
      ...(gpus.length > 0 ? { gpus } : {}),
      ...(Number.isInteger(cpus) && cpus > 0 ? { cpus } : {}),
      ...(Number.isInteger(nodes) && nodes > 0 ? { nodes } : {}),
      ...(nodelist !== "" && nodelist.length <= 1024 ? { nodelist } : {}),
      ...(/^[sS][0-9A-Za-z]{13}$/.test(env["SLURM_JOB_SLUID"] ?? "") ? { sluid: env["SLURM_JOB_SLUID"]! } : {}),
      atMs,
    },
    problem,
  };
}
