import { chmodSync, mkdirSync, readFileSync, readdirSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { z } from "zod";
import type { Logger } from "../../core/logger.js";

/**
 * The agent's local control socket (a unix socket, mode 0600: root only), spoken by
 * `banyan job start|end` from Slurm's prolog and epilog: one JSON line in, one JSON line out.
 */
export const jobStartSchema = z.strictObject({
  op: z.literal("job-start"),
  jobId: z.string().regex(/^\d+(_\d+)?$/, "a Slurm job id"),
  user: z.string().min(1),
  uid: z.string().regex(/^\d+$/),
  gid: z.string().regex(/^\d+$/).optional(),
  partition: z.string().default(""),
  account: z.string().default(""),
  cgroupPath: z.string().optional(),
  /** GPU indices from SLURM_JOB_GPUS. */
  gpus: z.array(z.string().regex(/^\d+$/, "a GPU index")).max(1024).optional(),
  /** CPUs Slurm allocated the job on this node (SLURM_JOB_CPUS_PER_NODE, or scontrol's CPU_IDs). */
  cpus: z.number().int().positive().max(1_000_000).optional(),
  /** The job's nodes (SLURM_JOB_NUM_NODES) and their hostlist (SLURM_JOB_NODELIST), for its report across roots. */
  nodes: z.number().int().positive().max(10_000_000).optional(),
  nodelist: z.string().max(1024).optional(),
  /** Its time limit in seconds (scontrol's TimeLimit), when discovery asked Slurm. */
  timeLimitS: z.number().nonnegative().max(1e9).optional(),
  /** Its SLUID (SLURM_JOB_SLUID, Slurm 26.05+): what its cgroup v2 directory is named by. */
  sluid: z.string().regex(/^[sS][0-9A-Za-z]{13}$/, "a SLUID").optional(),
  /** When the hook ran (ms since the epoch): a spooled request is applied later, but dated right. */
  atMs: z.number().int().positive().optional(),
});
export const jobEndSchema = z.strictObject({
  op: z.literal("job-end"),
  jobId: z.string().regex(/^\d+(_\d+)?$/),
  exitCode: z.string().optional(),
  atMs: z.number().int().positive().optional(),
});
/** A registration as the agent keeps it on disk across its restarts (RunningJob). */
export const runningJobSchema = z.strictObject({
  jobId: z.string().regex(/^\d+(_\d+)?$/),
  user: z.string().min(1),
  uid: z.string().regex(/^\d+$/),
  partition: z.string(),
  account: z.string(),
  cgroupPath: z.string().optional(),
  gpus: z.array(z.string().regex(/^\d+$/)).optional(),
  cpus: z.number().int().positive().optional(),
  nodes: z.number().int().positive().optional(),
  nodelist: z.string().max(1024).optional(),
  timeLimitS: z.number().nonnegative().optional(),
  sluid: z.string().regex(/^[sS][0-9A-Za-z]{13}$/).optional(),
  startedAtMs: z.number(),
});
const requestSchema = z.discriminatedUnion("op", [jobStartSchema, jobEndSchema, z.strictObject({ op: z.literal("ping") })]);
export type ControlRequest = z.infer<typeof requestSchema>;

export interface ControlHandlers {
  handle(req: ControlRequest): Promise<Record<string, unknown>>;
}

const MAX_REQUEST_BYTES = 64 * 1024;

export class ControlServer {
  private server: Server | null = null;

  constructor(
    private readonly path: string,
    private readonly handlers: ControlHandlers,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o755 });
    try {
      unlinkSync(this.path); // a socket left by a killed agent
    } catch {
      // none
    }
    this.server = createServer((s) => this.onConnection(s));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o600);
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private onConnection(s: Socket): void {
    let buf = "";
    s.setTimeout(5000, () => s.destroy());
    s.on("error", () => undefined);
    s.on("data", (chunk) => {
      buf += chunk.toString("utf8");
      if (buf.length > MAX_REQUEST_BYTES) {
        s.destroy();
        return;
      }
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      void this.answer(buf.slice(0, nl)).then((reply) => s.end(JSON.stringify(reply) + "\n"));
    });
  }

  /**
   * Requests that `banyan job start|end` could not deliver in time (the agent was still starting)
   * wait as files in `spoolDir`; they are applied in the order they were written.
   */
  async drainSpool(spoolDir: string): Promise<number> {
    let files: string[];
    try {
      files = readdirSync(spoolDir).filter((f) => f.endsWith(".json")).sort();
    } catch {
      return 0;
    }
    for (const f of files) {
      const path = join(spoolDir, f);
      const line = readFileSync(path, "utf8").trim();
      unlinkSync(path);
      const reply = await this.answer(line);
      if (reply["ok"] !== true) this.log.warn({ file: f, error: reply["error"] }, "spooled job request refused");
    }
    return files.length;
  }

  private async answer(line: string): Promise<Record<string, unknown>> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return { ok: false, error: "not JSON" };
    }
    const req = requestSchema.safeParse(raw);
    if (!req.success) return { ok: false, error: req.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
    try {
      return { ok: true, ...(await this.handlers.handle(req.data)) };
    } catch (err) {
      this.log.warn({ op: req.data.op, err: (err as Error).message }, "control request failed");
      return { ok: false, error: (err as Error).message };
    }
  }
}
