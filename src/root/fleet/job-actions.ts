import { execFile, spawn } from "node:child_process";
import { appendFile } from "node:fs/promises";
import { promisify } from "node:util";
import { z } from "zod";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import type { EventLog } from "../events/event-log.js";
import type { JobAggregate, RootJobs } from "./root-jobs.js";
import { expandHostlist } from "../../topology/hostlist.js";

const run = promisify(execFile);

const actionSchema = z
  .strictObject({
    /** The action's name (its events and audit lines say it). */
    name: z.string().regex(/^[a-zA-Z0-9_.-]{1,64}$/, "expected a name of letters, digits, _ . -"),
    /** What is watched: the job's GPUs' utilisation now (the mean over its GPUs; a job without GPUs is never acted on). */
    metric: z.enum(["gpu_utilization_percent"]).default("gpu_utilization_percent"),
    /** The job is idle while the metric is under this (1: 0 % on every GPU). */
    below: z.number().default(1),
    /** How long it must have been idle, without a break, for the action. */
    forS: z.number().positive(),
    /** notify: mail the job's user; cancel: scancel the job. */
    action: z.enum(["notify", "cancel"]),
    /** Only jobs of these partitions ([] for notify: all; a cancel must name its partitions). */
    partitions: z.array(z.string().min(1)).default([]),
    /** Never a job younger than this (from its start). */
    minJobAgeS: z.number().nonnegative().default(3600),
    /** Say what it would do (an event and an audit line) and do nothing: the default. */
    dryRun: z.boolean().default(true),
    /** The mail's text, with {job}, {user}, {partition}, {minutes} and {value} filled in. */
    message: z.string().min(1).max(4000).default("Job {job} has had its GPUs idle for {minutes} minutes (utilisation {value} %). Please check it, or cancel it to free the GPUs for others."),
  })
  .refine((a) => a.action !== "cancel" || a.partitions.length > 0, { message: "a cancel action must name the partitions it may act in (partitions: [...])", path: ["partitions"] });

export const jobActionsSchema = z
  .strictObject({
    /** The actions, each at most once a job. */
    rules: z.array(actionSchema).max(64).default([]),
    /** The mail of a notify: sendmail's path, and the domain of its recipients (the job's user, @domain when set). */
    sendmail: z.string().default("/usr/sbin/sendmail"),
    mailDomain: z.string().default(""),
    /** scancel's path; the root's user must be a Slurm operator for it (sacctmgr modify user … set adminlevel=operator). */
    scancel: z.string().default("scancel"),
    /** scontrol's path: before an action, Slurm is asked that the job runs, as that user, in that partition, on the nodes that reported it. */
    scontrol: z.string().default("scontrol"),
    /** A file every action is appended to (JSON lines), besides the root's log and the event. */
    auditLog: z.string().min(1).optional(),
    /** How often the running jobs are looked at. */
    everyMs: z.number().int().positive().default(10_000),
  })
  .default({ rules: [], sendmail: "/usr/sbin/sendmail", mailDomain: "", scancel: "scancel", scontrol: "scontrol", everyMs: 10_000 });
export type JobActionsConfig = z.infer<typeof jobActionsSchema>;
type Rule = JobActionsConfig["rules"][number];

/** One action taken (or, dry, not), as its event and audit line say it. */
export interface ActionRecord {
  readonly time: string;
  readonly rule: string;
  readonly action: "notify" | "cancel";
  readonly dry_run: boolean;
  readonly job_id: string;
  readonly user: string;
  readonly partition: string;
  readonly idle_s: number;
  readonly value: number;
  /** "done", "dry run", or what failed. */
  readonly result: string;
}

/**
 * Actions a site opts into (`jobs.actions` in the root's config), as Job Defense Shield takes them:
 * a running job whose GPUs have been idle (`below` %, all of them) for `forS` is mailed about, or
 * cancelled, once per rule. Guarded: dry-run by default, a cancel only in the partitions it names,
 * never a job younger than `minJobAgeS`, and only a job this root holds whole (every node Slurm
 * gave it; a job spread over several roots is left alone). Every action, dry or not, is a
 * `job_action` event, a line in the root's log and one in `auditLog`. Cost: O(running jobs) each
 * `everyMs`; the state is one entry per running job with GPUs, gone when it ends.
 */
export class JobActions {
  /** Per running job with GPUs: since when it has been idle by each rule's threshold, and the rules done. */
  private readonly state = new Map<string, { idleSinceMs: Map<string, number>; done: Set<string> }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly failed: LimitedWarning;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly jobs: RootJobs,
    private readonly events: EventLog,
    private config: JobActionsConfig,
    private readonly log: Logger,
  ) {
    this.failed = new LimitedWarning(log, "a job action failed", 60_000);
  }

  start(): void {
    this.schedule();
  }

  stop(): Promise<unknown> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    return this.chain;
  }

  setConfig(config: JobActionsConfig): void {
    const every = this.config.everyMs;
    this.config = config;
    if (this.timer !== null && every !== config.everyMs) {
      clearInterval(this.timer);
      this.schedule();
    }
  }

  /** A timer even with no rules (it only returns): a reload that adds some needs no restart. */
  private schedule(): void {
    this.timer = setInterval(() => void this.scan(), this.config.everyMs);
    this.timer.unref();
  }

  /** Looks at the running jobs once; the actions due are taken in order (resolves when they are). */
  scan(nowMs = Date.now()): Promise<unknown> {
    if (this.config.rules.length === 0) return this.chain;
    const running = new Set<string>();
    for (const job of this.jobs.list()) {
      if (!job.running || job.gpus === 0) continue;
      running.add(job.job_id);
      let s = this.state.get(job.job_id);
      if (s === undefined) this.state.set(job.job_id, (s = { idleSinceMs: new Map(), done: new Set() }));
      const value = job.gpu_utilization_percent;
      for (const rule of this.config.rules) {
        if (value === null || value >= rule.below) {
          s.idleSinceMs.delete(rule.name);
          continue;
        }
        const since = s.idleSinceMs.get(rule.name) ?? nowMs;
        s.idleSinceMs.set(rule.name, since);
        const idleS = (nowMs - since) / 1000;
        if (s.done.has(rule.name) || idleS < rule.forS || !this.allowed(rule, job, nowMs)) continue;
        s.done.add(rule.name);
        this.chain = this.chain.then(() => this.act(rule, job, idleS, value, nowMs));
      }
    }
    for (const id of this.state.keys()) if (!running.has(id)) this.state.delete(id);
    return this.chain;
  }

  /** A rule's guards: its partitions, the job's age, and the job held whole here. */
  private allowed(rule: Rule, job: JobAggregate, nowMs: number): boolean {
    if (rule.partitions.length > 0 && !rule.partitions.includes(job.partition)) return false;
    // Slurm's start on its nodes (banyan_job_start_time_seconds), else when this root first saw it.
    let started = Date.parse(job.first_seen);
    for (const n of this.jobs.nodesOf(job.job_id)) if (n.started_at_s !== null) started = Math.min(started, n.started_at_s * 1000);
    if ((nowMs - started) / 1000 < rule.minJobAgeS) return false;
    return job.nodes_expected === null || job.nodes.length >= job.nodes_expected;
  }

  private async act(rule: Rule, job: JobAggregate, idleS: number, value: number, nowMs: number): Promise<void> {
    let result = rule.dryRun ? "dry run" : "done";
    // What the roots see of a job comes from its nodes, and a node could say anything of a job id:
    // Slurm's word decides whether this is that job, running, on those nodes.
    const doubt = await this.slurmDoubts(job);
    if (doubt !== null) result = `refused: ${doubt}`;
    else if (!rule.dryRun) {
      try {
        if (rule.action === "cancel") await run(this.config.scancel, [job.job_id], { timeout: 30_000 });
        else await this.mail(rule, job, idleS, value);
      } catch (err) {
        result = `failed: ${(err as Error).message.split("\n")[0]}`;
        this.failed.warn({ rule: rule.name, job: job.job_id, err: result });
      }
    }
    const record: ActionRecord = { time: new Date(nowMs).toISOString(), rule: rule.name, action: rule.action, dry_run: rule.dryRun, job_id: job.job_id, user: job.user, partition: job.partition, idle_s: Math.round(idleS), value, result };
    this.events.emit("job_action", { job: job.job_id, labels: { job_id: job.job_id, user: job.user, partition: job.partition, account: job.account }, severity: rule.action === "cancel" && !rule.dryRun ? "warning" : "info", details: { ...record }, moment: rule.name }, nowMs);
    // The audit line: actions are rare (at most one per rule and job), so each is one line.
    this.log.info({ audit: record }, `job action ${rule.name}: ${rule.dryRun ? "would " : ""}${rule.action} job ${job.job_id} of ${job.user} (GPUs idle ${Math.round(idleS)} s): ${result}`);
    if (this.config.auditLog !== undefined) {
      await appendFile(this.config.auditLog, JSON.stringify(record) + "\n", { mode: 0o640 }).catch((err: Error) => this.failed.warn({ file: this.config.auditLog, err: err.message }));
    }
  }

  /** Why Slurm does not bear out what the nodes said of the job (null: it does). */
  private async slurmDoubts(job: JobAggregate): Promise<string | null> {
    let text: string;
    try {
      text = (await run(this.config.scontrol, ["show", "job", "-o", job.job_id], { timeout: 10_000, maxBuffer: 1024 * 1024 })).stdout;
    } catch (err) {
      return `scontrol show job ${job.job_id}: ${(err as Error).message.split("\n")[0]}`;
    }
    const field = (k: string): string => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(text)?.[1] ?? "";
    if (field("JobId") !== job.job_id) return `Slurm has no job ${job.job_id}`;
    if (field("JobState") !== "RUNNING") return `Slurm says the job is ${field("JobState") || "unknown"}`;
    const user = field("UserId").replace(/\(.*$/, "");
    if (user !== job.user) return `Slurm says the job is ${user}'s, not ${job.user}'s`;
    if (field("Partition") !== job.partition) return `Slurm says the job is in ${field("Partition")}, not ${job.partition}`;
    let nodes: string[];
    try {
      nodes = expandHostlist(field("NodeList"));
    } catch {
      return `Slurm's NodeList ${field("NodeList")} cannot be read`;
    }
    const theirs = new Set(nodes);
    const stranger = job.nodes.find((n) => !theirs.has(n));
    if (stranger !== undefined) return `${stranger} reported the job, and Slurm does not run it there`;
    return null;
  }

  private mail(rule: Rule, job: JobAggregate, idleS: number, value: number): Promise<void> {
    const fill = (t: string): string => t.replace(/\{(job|user|partition|minutes|value)\}/g, (_, k: string) => (k === "job" ? job.job_id : k === "user" ? job.user : k === "partition" ? job.partition : k === "minutes" ? String(Math.round(idleS / 60)) : String(Math.round(value * 10) / 10)));
    const to = this.config.mailDomain !== "" ? `${job.user}@${this.config.mailDomain}` : job.user;
    const text = `To: ${to}\nSubject: Slurm job ${job.job_id}: its GPUs are idle\nContent-Type: text/plain; charset=utf-8\n\n${fill(rule.message)}\n`;
    return new Promise((resolve, reject) => {
      const child = spawn(this.config.sendmail, ["-t", "-i"], { stdio: ["pipe", "ignore", "ignore"] });
      child.on("error", reject);
      child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${this.config.sendmail} exited ${code}`))));
      child.stdin.end(text);
    });
  }
}
