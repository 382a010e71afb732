import { z } from "zod";
import { isLabelName } from "../../../series/series-def.js";

const positiveInt = z.number().int().positive();

/** A regular expression as Prometheus' relabelling takes it: anchored at both ends. */
export function anchored(s: string): RegExp {
  return new RegExp(`^(?:${s})$`);
}

/** A matcher on a series: its metric name (a regular expression, anchored) and label values. */
const matcherSchema = z.strictObject({
  /** Anchored regular expression on the metric name (`node_cpu_.*`). */
  name: z
    .string()
    .refine((s) => isRegex(s), "expected a regular expression")
    .optional(),
  /** Label name → anchored regular expression on its value (a missing label is the empty string). */
  labels: z.record(z.string().refine(isLabelName, "expected a label name"), z.string().refine((s) => isRegex(s), "expected a regular expression")).default({}),
});

export type SeriesMatcherConfig = z.infer<typeof matcherSchema>;

const tlsSchema = z.strictObject({
  /** PEM file of the CA that signed the receiver's certificate (default: the system's CAs). */
  caFile: z.string().min(1).optional(),
  /** PEM files of this root's client certificate and key (mutual TLS). */
  certFile: z.string().min(1).optional(),
  /** PEM file of that certificate's key. */
  keyFile: z.string().min(1).optional(),
  /** The name the receiver's certificate must carry (default: the URL's host). */
  serverName: z.string().min(1).optional(),
  /** Accept any certificate: for tests only, never in production. */
  insecureSkipVerify: z.boolean().default(false),
});

const queueSchema = z.strictObject({
  /** Samples in one request at most (Prometheus' max_samples_per_send). */
  maxSamplesPerSend: positiveInt.max(100_000).default(2000),
  /** A partial request leaves after this long (Prometheus' batch_send_deadline). */
  batchDeadlineMs: positiveInt.default(1000),
  /** Requests in flight at once, each for its own shard of the series (samples of one series stay in order). */
  concurrency: positiveInt.max(64).default(4),
  /** Encoded requests held while the receiver is slow or down; past it the oldest are dropped and counted. */
  maxBytes: positiveInt.default(256 * 2 ** 20),
  /**
   * A directory of its own for this receiver's queue on disk (segment files): a root's restart keeps
   * what was queued, and memory holds one request per shard whatever the outage. Default: in memory.
   */
  dir: z.string().min(1).optional(),
  /** First retry after this long, doubling (with jitter) up to maxBackoffMs. */
  minBackoffMs: positiveInt.default(30),
  /** The longest wait between retries. */
  maxBackoffMs: positiveInt.default(5000),
  /** A request the receiver has not answered in this long failed (and is retried). */
  timeoutMs: positiveInt.default(30_000),
});

export const remoteWriteSchema = z
  .strictObject({
    /** Where to write: the receiver's remote_write endpoint (`http://prometheus:9090/api/v1/write`). */
    url: z.url({ protocol: /^https?$/, error: "expected an http:// or https:// URL" }),
    /**
     * "1.0" (prometheus.WriteRequest), "2.0" (io.prometheus.write.v2.Request: a symbol table, type
     * and help inline), or "auto": 2.0 until the receiver shows it speaks only 1.0 (415 or 400, or a
     * 2xx without X-Prometheus-Remote-Write-Samples-Written), then 1.0 for good.
     */
    protocol: z.enum(["1.0", "2.0", "auto"]).default("1.0"),
    /**
     * Body compression: snappy (the protocol's), or zstd: VictoriaMetrics' own variant, used once the
     * receiver answers its probe (`?get_vm_proto_version=1` → 1), else snappy (older VictoriaMetrics, Prometheus).
     */
    compression: z.enum(["snappy", "zstd"]).default("snappy"),
    /** Extra HTTP headers on every request (a tenant id: `X-Scope-OrgID`). */
    headers: z.record(z.string().min(1), z.string()).default({}),
    /** HTTP basic auth: the username, and the password or a file holding it (one of the two). */
    basicAuth: z
      .strictObject({
        /** The user name. */
        username: z.string().min(1),
        /** The password in the config itself (prefer passwordFile: the config is often world-readable). */
        password: z.string().optional(),
        /** A file holding the password (read at start and reload). */
        passwordFile: z.string().min(1).optional(),
      })
      .optional(),
    /** A file holding a bearer token (read at start and reload). */
    bearerTokenFile: z.string().min(1).optional(),
    /** TLS toward an https:// receiver: its CA, this root's client certificate, the name to check. */
    tls: tlsSchema.optional(),
    /** AWS Signature V4 (Amazon Managed Prometheus): the region, and static keys or the standard AWS credential chain. */
    sigv4: z
      .strictObject({
        /** The workspace's AWS region (eu-west-1). */
        region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "expected an AWS region such as eu-west-1"),
        /** A static access key id (with secretKey); neither: the AWS credential chain (environment, ~/.aws, the instance's role). */
        accessKey: z.string().min(1).optional(),
        /** The static secret access key. */
        secretKey: z.string().min(1).optional(),
        /** A profile of ~/.aws/config (it may name a role_arn to assume). */
        profile: z.string().min(1).optional(),
        /** The service name signed for ("aps": Amazon Managed Service for Prometheus). */
        service: z.string().min(1).default("aps"),
      })
      .optional(),
    /** The sending queue: batches, shards, retries, and how much it holds while the receiver is away. */
    queue: queueSchema.prefault({}),
    /** Every series' current value is written at least this often (inside Prometheus' 5-minute staleness window). */
    refreshMs: positiveInt.min(1000).max(240_000).default(15_000),
    /** Labels added to every series that does not carry them already (`cluster: hpc1`). */
    externalLabels: z.record(z.string().refine(isLabelName, "expected a label name"), z.string().min(1)).default({}),
    /** Only series matching one of these are written (default: all). */
    match: z.array(matcherSchema).default([]),
    /** Series matching one of these are never written. */
    drop: z.array(matcherSchema).default([]),
    /**
     * Samples are written only with times in [now - maxAgeMs, now + maxFutureMs] on the root's clock
     * (0: no bound); the others are counted (`reason="too_old"`, `"future"`) with a warning naming the
     * node. A node's clock far off would otherwise break the receiver: Prometheus refuses a whole
     * request for one sample over an hour old (out of bounds), and one far in the future moves its
     * head forward so that every other node's samples become out of bounds; Mimir refuses samples
     * more than 10 minutes ahead.
     */
    maxAgeMs: z.number().int().min(0).default(3_600_000),
    /** The later end of that window (a node's clock ahead of the root's); 0: no bound. */
    maxFutureMs: z.number().int().min(0).default(300_000),
    /**
     * The root's own series (each node's banyan_node_up and last-seen time, the aggregates, the
     * root's banyan_* metrics, with `instance` the root's name) are written this often, stamped with
     * the root's clock, as a scrape of the root would take them (0: never). With them a store fed by
     * remote_write alone answers every dashboard a scrape of the root answers.
     */
    rootSeriesIntervalMs: z.number().int().min(0).default(15_000).refine((v) => v === 0 || v >= 1000, "expected 0 (never) or at least 1000"),
    /** Metadata (type, help) of every family is sent this often (0: never). */
    metadataIntervalMs: z.number().int().min(0).default(60_000),
  })
  .superRefine((c, ctx) => {
    if (c.compression === "zstd" && c.protocol !== "1.0") ctx.addIssue({ code: "custom", path: ["compression"], message: 'expected snappy with protocol 2.0 or auto (zstd is VictoriaMetrics\' variant of 1.0)', input: c.compression });
    for (const h of Object.keys(c.headers)) {
      if (RESERVED_HEADERS.has(h.toLowerCase())) ctx.addIssue({ code: "custom", path: ["headers", h], message: "expected a header the protocol does not set itself (use basicAuth or bearerTokenFile for Authorization)", input: h });
    }
    if (c.basicAuth !== undefined && (c.basicAuth.password === undefined) === (c.basicAuth.passwordFile === undefined)) {
      ctx.addIssue({ code: "custom", path: ["basicAuth"], message: "expected exactly one of password and passwordFile", input: c.basicAuth.username });
    }
    if (c.sigv4 !== undefined && (c.basicAuth !== undefined || c.bearerTokenFile !== undefined)) ctx.addIssue({ code: "custom", path: ["sigv4"], message: "expected sigv4 alone, without basicAuth or bearerTokenFile (it sets Authorization itself)", input: c.sigv4.region });
    if (c.sigv4 !== undefined && (c.sigv4.accessKey === undefined) !== (c.sigv4.secretKey === undefined)) ctx.addIssue({ code: "custom", path: ["sigv4"], message: "expected accessKey and secretKey together (or neither: the AWS credential chain)", input: c.sigv4.region });
    if (c.basicAuth !== undefined && c.bearerTokenFile !== undefined) ctx.addIssue({ code: "custom", path: ["bearerTokenFile"], message: "expected basicAuth or bearerTokenFile, not both", input: c.bearerTokenFile });
    if ((c.tls?.certFile === undefined) !== (c.tls?.keyFile === undefined)) ctx.addIssue({ code: "custom", path: ["tls"], message: "expected certFile and keyFile together", input: c.tls?.certFile ?? c.tls?.keyFile });
    if (c.queue.minBackoffMs > c.queue.maxBackoffMs) ctx.addIssue({ code: "custom", path: ["queue", "minBackoffMs"], message: `expected at most maxBackoffMs (${c.queue.maxBackoffMs})`, input: c.queue.minBackoffMs });
    for (const name of Object.keys(c.externalLabels)) if (name === "__name__" || name === "instance") ctx.addIssue({ code: "custom", path: ["externalLabels", name], message: "expected a label other than __name__ and instance", input: name });
  });

export type RemoteWriteConfig = z.infer<typeof remoteWriteSchema>;

/** Headers the sender sets itself (Prometheus refuses them in `headers` too). */
const RESERVED_HEADERS = new Set(["authorization", "content-encoding", "content-type", "content-length", "host", "user-agent", "x-prometheus-remote-write-version", "retry-attempt"]);

function isRegex(s: string): boolean {
  try {
    anchored(s);
    return true;
  } catch {
    return false;
  }
}
