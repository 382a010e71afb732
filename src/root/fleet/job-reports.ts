import { z } from "zod";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import { firstHost } from "../../topology/hostlist.js";
import type { EventLog } from "../events/event-log.js";
import { jobCard, jobRuleSchema, mergeParts, scoreWeightsSchema, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, type JobCard, type JobPart } from "./job-card.js";
import type { RootJobs } from "./root-jobs.js";
import { jobActionsSchema } from "./job-actions.js";

export const jobsConfigSchema = z
  .strictObject({
    /** Site rules: each turns a figure of the card into a note (docs/slurm.md#report-cards); the defaults are jobstats' and LLview's usual notes. */
    rules: z.array(jobRuleSchema).max(256).default([...DEFAULT_JOB_RULES]),
    /** The weights of the score's parts (cpu, gpu, memory, time); a part with weight 0 does not count. */
    score: scoreWeightsSchema.default(DEFAULT_SCORE_WEIGHTS),
    /** Cards of ended jobs kept for /api/v1/jobs/<id>/report after their series are gone (the oldest leave first). */
    reportsKept: z.number().int().positive().max(1_000_000).default(10_000),
    /** How long after a job's end its verdict is made: the other roots' last figures of it arrive meanwhile. */
    verdictDelayMs: z.number().int().nonnegative().default(5000),
    /** How long another root may take to give its part of a job. */
    peerTimeoutMs: z.number().int().positive().default(3000),
    /** The grid's carbon intensity (g CO2e per kWh): a card's energy becomes emissions too. Unset: none. */
    carbonIntensityGramsPerKwh: z.number().nonnegative().max(10_000).optional(),
    /**
     * A series holding the grid's carbon intensity now (g CO2e per kWh; e.g. an exporter of the
     * grid operator's figures scraped by an agent): its value when a card is made, before
     * carbonIntensityGramsPerKwh, which stands in while the series is not there.
     */
    carbonIntensitySeries: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, "expected a metric name").optional(),
    /** Actions on running jobs a site opts into (mail the user, scancel), dry-run by default (docs/slurm.md#actions). */
    actions: jobActionsSchema,
  })
  .default({ rules: [...DEFAULT_JOB_RULES], score: DEFAULT_SCORE_WEIGHTS, reportsKept: 10_000, verdictDelayMs: 5000, peerTimeoutMs: 3000, actions: { rules: [], sendmail: "/usr/sbin/sendmail", mailDomain: "", scancel: "scancel", scontrol: "scontrol", everyMs: 10_000 } });
export type JobsConfig = z.infer<typeof jobsConfigSchema>;

/** Another root of the topology, where its HTTP API answers. */
export interface PeerRoot {
  readonly name: string;
  readonly http: string;
}

/** Where the roots are: this one's peers and the root each node's tree ends at. */
export interface JobRootsPlan {
  readonly root: string;
  readonly peers: readonly PeerRoot[];
  rootOfNode(node: string): string | undefined;
}

/** A part as another root sends it: bounded, since a reply is input like any other; kept to JobPart's shape by the compiler. */
const partSchema = z.object({
  job_id: z.string().max(64),
  user: z.string().max(256),
  account: z.string().max(256),
  partition: z.string().max(256),
  running: z.boolean(),
  first_seen: z.string().max(40),
  last_seen: z.string().max(40),
  time_limit_s: z.number().nullable(),
  nodes_expected: z.number().nullable(),
  nodelist: z.string().max(1024).nullable(),
  nodes: z
    .array(
      z.object({
        node: z.string().max(256),
        started_at_s: z.number().nullable(),
        cpu_seconds: z.number().nullable(),
        cpus_allocated: z.number().nullable(),
        memory_peak_bytes: z.number().nullable(),
        memory_limit_bytes: z.number().nullable(),
        io_read_bytes: z.number().nullable(),
        io_written_bytes: z.number().nullable(),
        gpus: z.array(z.object({ gpu: z.string().max(16), busy_seconds: z.number().nullable(), memory_peak_bytes: z.number().nullable() })).max(1024),
        energy_joules: z.record(z.string().max(32), z.number()).refine((r) => Object.keys(r).length <= 16, "at most 16 energy sources"),
      }),
    )
    .max(1_000_000),
  roots: z.array(z.string().max(256)).max(1024),
}) satisfies z.ZodType<JobPart>;

/** How long a card made on request is given to whoever else asks for it. */
const CARD_TTL_MS = 2000;
/** Cards made on request kept at most (the oldest leave first). */
const RECENT_CARDS = 256;

/** Cards gathered from the other roots at once, at most. */
const MAX_GATHERS = 16;

/** A card refused because too many are being gathered (the API answers 503). */
export class BusyError extends Error {}

/** A peer's reply past this is refused (a 100,000-node job's part is ~25 MB). */
const MAX_PART_BYTES = 64 * 1024 * 1024;

/**
 * Report cards of jobs (`/api/v1/jobs/<id>/report`) and their verdicts (`job_verdict` events).
 * A job's nodes are spread over the roots of their trees; a card is made from every root's part of
 * it (`/api/v1/jobs/<id>/part`), merged. At a job's end the root of its first node's tree (its
 * hostlist's first name) makes its verdict once, `verdictDelayMs` later, keeps the card for
 * `reportsKept` jobs, and raises `job_verdict`; a root that cannot tell (no hostlist) makes one for
 * what it holds. Cost: a card is O(the job's nodes); none is made while nobody asks, but at an end.
 */
export class JobReports {
  /** Final cards of ended jobs, oldest first. */
  private readonly cards = new Map<string, JobCard>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Cards being gathered from the other roots now. */
  private gathering = 0;
  /** Cards made lately on request, shared while fresh (at most RECENT_CARDS). */
  private readonly recent = new Map<string, { atMs: number; card: Promise<JobCard | undefined> }>();
  private readonly peerFailed: LimitedWarning;

  constructor(
    private readonly jobs: RootJobs,
    private readonly events: EventLog,
    private config: JobsConfig,
    private plan: JobRootsPlan,
    log: Logger,
    private readonly fetchPart: (peer: PeerRoot, jobId: string, timeoutMs: number) => Promise<unknown> = httpPart,
    /** The value of a series now at this root (the first origin's that has it), or null. */
    private readonly seriesValue: (name: string) => number | null = () => null,
  ) {
    this.peerFailed = new LimitedWarning(log, "another root did not give its part of a job: its card is partial", 60_000);
  }

  start(): void {
    this.jobs.onChange((change, job) => {
      if (change !== "end") return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        void this.verdict(job.job_id);
      }, this.config.verdictDelayMs);
      t.unref();
      this.timers.add(t);
    });
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  setConfig(config: JobsConfig, plan: JobRootsPlan): void {
    this.config = config;
    this.plan = plan;
  }

  /** The carbon intensity now: the configured series' value where it is, else the configured figure, else none. */
  private carbon(): number | null {
    const name = this.config.carbonIntensitySeries;
    const v = name === undefined ? null : this.seriesValue(name);
    return v !== null && Number.isFinite(v) && v >= 0 ? v : (this.config.carbonIntensityGramsPerKwh ?? null);
  }

  /** What this root holds of a job (`/api/v1/jobs/<id>/part`). */
  part(jobId: string): JobPart | undefined {
    return this.jobs.part(jobId);
  }

  /**
   * A job's card: the verdict kept at its end, or made now from every root's part (only this root's
   * with `local`). A card made is shared for CARD_TTL_MS by whoever asks (a 10,000-node job's costs
   * ~40 ms of the event loop and 5 MB of other roots' parts: a user who asks again and again, or many
   * at once, cost it once).
   */
  card(jobId: string, local = false, nowMs = Date.now()): Promise<JobCard | undefined> {
    const kept = this.cards.get(jobId);
    if (kept !== undefined && !local) return Promise.resolve(kept);
    const key = `${local ? "l" : "a"}${jobId}`;
    const cached = this.recent.get(key);
    if (cached !== undefined && nowMs - cached.atMs < CARD_TTL_MS) return cached.card;
    // Each card not held whole here asks every other root: a flood of made-up job ids must not
    // become a flood at the peers. Past MAX_GATHERS at once, a request is refused (the API says 503).
    if (!local && this.gathering >= MAX_GATHERS) return Promise.reject(new BusyError(`${MAX_GATHERS} cards are being gathered from the other roots: try again`));
    if (!local) this.gathering++;
    const card = this.gather(jobId, local)
      .then(({ part, missing }) => (part === undefined ? undefined : jobCard(part, this.config.rules, this.config.score, nowMs, missing, this.carbon())))
      .finally(() => {
        if (!local) this.gathering--;
      });
    this.recent.delete(key);
    this.recent.set(key, { atMs: nowMs, card });
    while (this.recent.size > RECENT_CARDS) this.recent.delete(this.recent.keys().next().value!);
    return card;
  }

  /** The cards kept (tests, the live page). */
  get kept(): number {
    return this.cards.size;
  }

  /** A job's verdict at its end, by the root of its first node (or by each root, when none can tell). */
  async verdict(jobId: string, nowMs = Date.now()): Promise<JobCard | undefined> {
    const mine = this.jobs.part(jobId);
    if (mine === undefined || mine.running) return undefined;
    const first = mine.nodelist === null ? undefined : firstHost(mine.nodelist);
    const owner = first === undefined ? undefined : this.plan.rootOfNode(first);
    if (owner !== undefined && owner !== this.plan.root) return undefined;
    const { part, missing } = await this.gather(jobId, false, mine);
    if (part === undefined) return undefined;
    const card = jobCard(part, this.config.rules, this.config.score, nowMs, missing, this.carbon());
    this.cards.delete(jobId);
    this.cards.set(jobId, card);
    while (this.cards.size > this.config.reportsKept) this.cards.delete(this.cards.keys().next().value!);
    const warned = card.notes.some((n) => n.severity === "warning");
    this.events.emit(
      "job_verdict",
      {
        job: jobId,
        labels: { job_id: jobId, user: card.user, partition: card.partition, account: card.account },
        severity: warned ? "warning" : "info",
        details: { score: card.metrics.score, notes: card.notes.map((n) => n.message), rules: card.notes.map((n) => n.rule), metrics: card.metrics, nodes: card.nodes, partial: card.partial },
        moment: "verdict",
      },
      nowMs,
    );
    return card;
  }

  /** This root's part and the other roots' where the job has nodes this root does not hold. */
  private async gather(jobId: string, local: boolean, held?: JobPart): Promise<{ part: JobPart | undefined; missing: string[] }> {
    // What this root holds (its job view refreshed once: a caller that has it already passes it).
    const mine = held ?? this.jobs.part(jobId);
    const whole = mine !== undefined && mine.nodes_expected !== null && mine.nodes.length >= mine.nodes_expected;
    if (local || whole || this.plan.peers.length === 0) return { part: mine, missing: [] };
    const missing: string[] = [];
    const theirs = await Promise.all(
      this.plan.peers.map(async (peer) => {
        try {
          const raw = await this.fetchPart(peer, jobId, this.config.peerTimeoutMs);
          const part: JobPart | null = raw === null ? null : partSchema.parse(raw);
          return part;
        } catch (err) {
          missing.push(peer.name);
          this.peerFailed.warn({ peer: peer.name, http: peer.http, job: jobId, err: (err as Error).message.split("\n")[0] });
          return null;
        }
      }),
    );
    const parts = [...(mine !== undefined ? [mine] : []), ...theirs.filter((p): p is JobPart => p !== null && p.job_id === jobId)];
    return { part: mergeParts(parts), missing: missing.sort() };
  }
}

/** Asks another root for its part of a job: null when it has none (404). */
async function httpPart(peer: PeerRoot, jobId: string, timeoutMs: number): Promise<unknown> {
  const res = await fetch(`http://${peer.http}/api/v1/jobs/${encodeURIComponent(jobId)}/part`, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status === 404) {
    await res.body?.cancel();
    return null;
  }
  if (res.status !== 200) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  for await (const chunk of res.body ?? []) {
    bytes += (chunk as Uint8Array).length;
    if (bytes > MAX_PART_BYTES) {
      await res.body?.cancel();
      throw new Error(`a part past ${MAX_PART_BYTES} bytes`);
    }
    chunks.push(chunk as Uint8Array);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
}
