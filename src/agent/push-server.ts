import type { IncomingMessage, Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { BanyanError, Code } from "../core/errors.js";
import { boundHttpServer, DEFAULT_HTTP_BOUNDS, readBody, type HttpBounds } from "../core/http-bounds.js";
import { LimitedWarning, type Logger } from "../core/logger.js";
import { WebAuth, createWebServer, type WebConfig } from "../core/web-config.js";
import { DEFAULT_SERIES_LIMITS, type SeriesLimits } from "../series/payload.js";
import { SeriesType, forwardedType, seriesKey } from "../series/series-def.js";
import { PROTOBUF_DELIMITED, parseDelimitedFamilies } from "../series/protobuf-exposition.js";
import { parseExposition, type ParsedSample } from "../series/text-parser.js";
import { parseHostPort } from "../wire/uplink-grpc.js";
import { SeriesWriter } from "./collectors/series-writer.js";
import { parseGroupingPath, tokenOf } from "./push-request.js";
import type { SampleTarget, Source } from "../node/source.js";

/** The job a token belongs to, and its labels. */
export interface PushAuth {
  jobOfToken(token: string): string | undefined;
  jobLabels(jobId: string): Record<string, string> | undefined;
  /** Whether the token is the node's own push token (for groups of no job, when every push needs a token). */
  isNodeToken?(token: string): boolean;
}

/** What the push API takes at most, and whom it hears (`jobs.push.*`). */
export interface PushPolicy {
  readonly http: HttpBounds;
  /** Largest request body, bytes (parsed in one go: ~50 ms a MiB). */
  readonly maxBodyBytes: number;
  readonly maxSeriesPerGroup: number;
  readonly maxGroups: number;
  /** Series of every group together. */
  readonly maxSeries: number;
  /** Every push needs a token: its job's, or the node's own for a group of no job. */
  readonly requireToken: boolean;
  /** `job` values of the node's own series (its collectors, scrape targets): a push may not use them. */
  readonly reservedJobs: readonly string[];
  /** The wire's limits: what could not travel is refused at push time. */
  readonly limits: SeriesLimits & { readonly maxNameLength?: number };
  /**
   * Prometheus' web config (TLS, basic auth) in front of the API; with basic_auth_users the job's
   * token travels in `X-Push-Token` (Authorization carries the user's password).
   */
  readonly web?: WebConfig | null;
}

/** The push API's defaults: a node's own jobs push, so fewer connections and requests than a root's HTTP side. */
export const DEFAULT_PUSH_POLICY: PushPolicy = Object.freeze({
  http: Object.freeze({ ...DEFAULT_HTTP_BOUNDS, maxConnections: 64, maxConcurrentRequests: 4, maxConnectionsPerAddress: 64, maxPendingConnections: 16 }),
  maxBodyBytes: 1024 * 1024,
  maxSeriesPerGroup: 10_000,
  maxGroups: 1000,
  maxSeries: 50_000,
  requireToken: false,
  reservedJobs: ["node", "relay"],
  limits: DEFAULT_SERIES_LIMITS,
});

/**
 * Name prefixes of the node's own series and of what the root accounts (banyan_job_*,
 * banyan_node_parent_info): a push may not write them, whatever its job.
 */
const RESERVED_PREFIXES = ["banyan_", "node_", "slurm_", "DCGM_"] as const;

interface Group {
  readonly grouping: Record<string, string>;
  readonly jobId: string | null;
  /** As pushed (POST merges into them; types are checked against them). */
  readonly samples: readonly ParsedSample[];
  /** The group's own labels: its grouping key and, for a Slurm job's push, the job's labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** What goes up each tick, worked out once per push: labels merged, types settled. */
  readonly series: readonly { name: string; labels: Record<string, string>; value: number; type: SeriesType; help: string }[];
  /** When it was last pushed: the Pushgateway's push_time_seconds, by which dashboards tell stale pushes. */
  readonly pushedAtS: number;
  /** When a push to it was last refused as inconsistent: push_failure_time_seconds. */
  readonly failedAtS: number;
}

/** The Pushgateway's own series per group: written by the server, never taken from a push. */
const PUSH_TIMES = new Set(["push_time_seconds", "push_failure_time_seconds"]);

/**
 * A Pushgateway-compatible endpoint on the node (127.0.0.1), so a job publishes its own progress
 * with any Prometheus client's push function: `PUT|POST|DELETE /metrics/job/<job>[/<label>/<value>…]`.
 * A push naming a Slurm job (`slurm_job_id` in the path) must carry that job's token (Bearer, or the
 * password of Basic auth) — the prolog wrote it where only the job's user can read it. Pushed series
 * carry the job's labels and leave when the job ends or the group is deleted. As a Source, the
 * server hands the pushed series to the sampler each tick.
 */
export class PushServer implements Source {
  readonly name = "push";
  private readonly groups = new Map<string, Group>();
  private server: Server | HttpsServer | null = null;
  private readonly webAuth: WebAuth;
  private writer: SeriesWriter | null = null;
  /** Series of every group together (bounded by maxSeries). */
  private seriesCount = 0;
  private readonly groupFailed: LimitedWarning;

  constructor(
    private readonly listenAddress: string,
    private readonly auth: PushAuth,
    private readonly log: Logger,
    private readonly policy: PushPolicy = DEFAULT_PUSH_POLICY,
  ) {
    this.groupFailed = new LimitedWarning(log, "a pushed group could not be sampled (skipped; the other groups go on)", 60_000);
    this.webAuth = new WebAuth(policy.web ?? null);
  }

  async listen(): Promise<number> {
    const { host, port } = parseHostPort(this.listenAddress, "jobs.pushListen");
    this.server = createWebServer((req, res) => {
      if (admission.admit(res) === null) {
        res.writeHead(503, { "content-type": "text/plain; charset=utf-8", "retry-after": "1" }).end("too many pushes in flight\n");
        return;
      }
      void this.handle(req).then(
        ({ status, body, headers }) => {
          if (status >= 400) this.log.debug({ status, path: req.url, reason: body.trim() }, "push refused");
          res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers }).end(body);
        },
        () => res.writeHead(500).end("internal error\n"),
      );
    }, this.policy.web ?? null);
    const admission = boundHttpServer(this.server, this.policy.http);
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", (err) => reject(new BanyanError(Code.InvalidConfig, `cannot listen on ${this.listenAddress}: ${err.message}`)));
      this.server!.listen(port, host, () => resolve());
    });
    const addr = this.server.address();
    return typeof addr === "object" && addr !== null ? addr.port : port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** The job ended: its groups leave. */
  endJob(jobId: string): void {
    for (const [k, g] of this.groups) if (g.jobId === jobId) this.setGroup(k, undefined);
  }

  /** Stores (or, with undefined, deletes) a group, keeping the count of series of all groups. */
  private setGroup(key: string, g: Group | undefined): void {
    const old = this.groups.get(key);
    if (old !== undefined) this.seriesCount -= old.series.length;
    if (g === undefined) {
      this.groups.delete(key);
      return;
    }
    this.groups.set(key, g);
    this.seriesCount += g.series.length;
  }

  collect(target: SampleTarget): void {
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    for (const g of this.groups.values()) {
      try {
        for (const f of g.series) w.put(f.name, f.labels, f.value, f.type, f.help);
        w.gauge("push_time_seconds", g.labels, g.pushedAtS, "Last Unix time when changing this group in the Pushgateway succeeded.");
        w.gauge("push_failure_time_seconds", g.labels, g.failedAtS, "Last Unix time when changing this group in the Pushgateway failed.");
      } catch (err) {
        // One group's trouble is its own: the groups after it (other users' jobs) go on.
        this.groupFailed.warn({ group: g.grouping, err: (err as Error).message });
      }
    }
    w.end();
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string; headers?: Record<string, string> }> {
    const unauthorized = await this.webAuth.refusal(req);
    if (unauthorized !== null) return unauthorized;
    const url = new URL(req.url ?? "/", "http://push");
    if (req.method === "GET" && url.pathname === "/-/healthy") return { status: 200, body: "OK\n" };
    const path = parseGroupingPath(url.pathname);
    if ("status" in path) return path;
    const grouping = path.grouping;
    const webUsers = (this.policy.web?.users.size ?? 0) > 0;
    const pushToken = req.headers["x-push-token"];
    const token = webUsers ? (typeof pushToken === "string" && pushToken !== "" ? pushToken : null) : tokenOf(req.headers.authorization);
    const named = grouping["slurm_job_id"];
    const owner = token === null ? undefined : this.auth.jobOfToken(token);
    const nodeToken = token !== null && owner === undefined && this.auth.isNodeToken?.(token) === true;
    if (token !== null && owner === undefined && !nodeToken) return { status: 403, body: "the token belongs to no job running on this node\n" };
    if (named !== undefined && token === null) return { status: 401, body: `a push for Slurm job ${named} needs that job's token (the file the prolog wrote for it)\n` };
    if (named !== undefined && owner !== named) return { status: 403, body: `the token is not job ${named}'s\n` };
    if (token === null && this.policy.requireToken) return { status: 401, body: "every push on this node needs a token: its job's, or the node's push token (jobs.push.requireToken)\n" };
    const jobId = owner ?? null;
    const job = grouping["job"] ?? "";
    if (this.policy.reservedJobs.includes(job)) return { status: 400, body: `job "${job}" is the node's own (its collectors or scrape targets): push under another job name\n` };
    const key = JSON.stringify(Object.entries(grouping).sort());
    if (req.method === "DELETE") {
      // A job's group is its job's to delete.
      const g = this.groups.get(key);
      if (g !== undefined && g.jobId !== null && g.jobId !== jobId) return { status: 403, body: `the group belongs to Slurm job ${g.jobId}: delete it with that job's token\n` };
      this.setGroup(key, undefined);
      return { status: 202, body: "" };
    }
    if (req.method !== "PUT" && req.method !== "POST") return { status: 405, body: "PUT, POST or DELETE\n" };
    const old = this.groups.get(key);
    if (old !== undefined && old.jobId !== null && old.jobId !== jobId) return { status: 403, body: `the group belongs to Slurm job ${old.jobId}: push to it with that job's token\n` };
    if (old === undefined && this.groups.size >= this.policy.maxGroups) return { status: 429, body: `this node holds ${this.groups.size} pushed groups, the most it takes (jobs.push.maxGroups): delete some first\n` };
    const body = await readBody(req, this.policy.maxBodyBytes);
    if (body === null) return { status: 413, body: `body over ${this.policy.maxBodyBytes} bytes (jobs.push.maxBodyBytes)\n` };
    // The Go client pushes protobuf (delimited MetricFamily messages); the others push text.
    const protobuf = PROTOBUF_DELIMITED.test(req.headers["content-type"] ?? "");
    const parsed = protobuf ? parseDelimitedFamilies(body) : parseExposition(body.toString("utf8"));
    if (parsed.errors.length > 0) {
      return { status: 400, body: parsed.errors.slice(0, 20).map((e) => (protobuf ? e.message : `line ${e.line}: ${e.message}`)).join("\n") + "\n" };
    }
    // POST replaces only the metrics it names, as the Pushgateway does; PUT the whole group.
    const names = new Set(parsed.samples.map((s) => s.family));
    const samples = req.method === "POST" && old !== undefined ? [...old.samples.filter((s) => !names.has(s.family)), ...parsed.samples] : parsed.samples;
    // What could never be stored or travel is refused whole, and nothing of it is kept.
    const refused = this.refusal(grouping, jobId, samples);
    if (refused !== null) return refused;
    const problem = this.inconsistency(key, grouping, samples);
    if (problem !== null) {
      // As the Pushgateway: the group stays as it was, its push_failure_time_seconds says it failed.
      this.setGroup(key, this.group(grouping, jobId, old?.samples ?? [], old?.pushedAtS ?? 0, Date.now() / 1000));
      return { status: 400, body: `pushed metrics are invalid or inconsistent with existing metrics: ${problem}\n` };
    }
    this.setGroup(key, this.group(grouping, jobId, samples, Date.now() / 1000, old?.failedAtS ?? 0));
    return { status: 200, body: "" };
  }

  /** A push the node must not take (reserved names, over the wire's or the API's limits), or null. */
  private refusal(grouping: Record<string, string>, jobId: string | null, samples: readonly ParsedSample[]): { status: number; body: string } | null {
    const p = this.policy;
    if (samples.length > p.maxSeriesPerGroup) return { status: 413, body: `${samples.length} series in one group, over ${p.maxSeriesPerGroup} (jobs.push.maxSeriesPerGroup)\n` };
    const old = this.groups.get(JSON.stringify(Object.entries(grouping).sort()));
    const total = this.seriesCount - (old?.series.length ?? 0) + samples.length;
    if (total > p.maxSeries) return { status: 429, body: `this node would hold ${total} pushed series, over ${p.maxSeries} (jobs.push.maxSeries)\n` };
    const extra = { ...grouping, ...(jobId !== null ? (this.auth.jobLabels(jobId) ?? {}) : {}) };
    const maxString = p.limits.maxStringLength;
    const tooLong = (s: string): boolean => s.length > maxString;
    for (const [k, v] of Object.entries(extra)) if (tooLong(k) || tooLong(v)) return { status: 400, body: `label ${k.slice(0, 64)} of the group is longer than ${maxString} characters, more than the wire carries\n` };
    for (const s of samples) {
      if (PUSH_TIMES.has(s.name)) continue;
      const reserved = RESERVED_PREFIXES.find((pre) => s.name.startsWith(pre));
      if (reserved !== undefined) return { status: 400, body: `${s.name}: names starting with ${reserved} are the node's own series; push them under another name\n` };
      if (tooLong(s.name) || tooLong(s.family) || tooLong(s.help)) return { status: 400, body: `${s.name.slice(0, 64)}: its name or HELP is longer than ${maxString} characters, more than the wire carries\n` };
      let n = Object.keys(extra).length;
      for (const [k, v] of Object.entries(s.labels)) {
        if (!(k in extra)) n++;
        if (tooLong(k) || tooLong(v)) return { status: 400, body: `${s.name}: label ${k.slice(0, 64)} is longer than ${maxString} characters, more than the wire carries\n` };
      }
      if (n > p.limits.maxLabels) return { status: 400, body: `${s.name}: ${n} labels with the group's, over the wire's ${p.limits.maxLabels}\n` };
    }
    return null;
  }

  private group(grouping: Record<string, string>, jobId: string | null, samples: readonly ParsedSample[], pushedAtS: number, failedAtS: number): Group {
    const labels = { ...grouping, ...(jobId !== null ? (this.auth.jobLabels(jobId) ?? {}) : {}) };
    const series = samples
      .filter((s) => !PUSH_TIMES.has(s.name))
      .map((s) => ({ name: s.name, labels: { ...s.labels, ...labels }, value: s.value, type: forwardedType(s.name, s.type), help: s.help }));
    return { grouping, jobId, samples, labels, series, pushedAtS, failedAtS };
  }

  /**
   * What the Pushgateway would refuse in a group about to be stored: timestamps, a series twice, a
   * metric of another type than the same metric of another group (the page would be invalid).
   */
  private inconsistency(key: string, grouping: Readonly<Record<string, string>>, samples: readonly ParsedSample[]): string | null {
    const seen = new Set<string>();
    for (const s of samples) {
      if (s.timestampMs !== null) return `pushed metrics must not have timestamps (${s.name})`;
      if (PUSH_TIMES.has(s.name)) continue;
      const id = seriesKey(s.name, Object.entries({ ...s.labels, ...grouping }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      if (seen.has(id)) return `${id} was pushed twice`;
      seen.add(id);
    }
    const types = new Map<string, SeriesType>();
    for (const [k, g] of this.groups) if (k !== key) for (const s of g.samples) types.set(s.family, s.type);
    for (const s of samples) {
      const t = types.get(s.family);
      if (t !== undefined && t !== s.type) return `${s.family} is ${TYPE_NAMES[s.type]} here but ${TYPE_NAMES[t]} in another group`;
    }
    return null;
  }
}

const TYPE_NAMES: Record<SeriesType, string> = {
  [SeriesType.Gauge]: "a gauge",
  [SeriesType.Counter]: "a counter",
  [SeriesType.HistogramPart]: "a histogram",
  [SeriesType.SummaryPart]: "a summary",
  [SeriesType.Untyped]: "untyped",
};
