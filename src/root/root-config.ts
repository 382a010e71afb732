import { z } from "zod";
import { parseConfig, type ConfigSource } from "../core/config-file.js";
import { httpBoundsFields } from "../core/http-bounds.js";
import { isMetricName } from "../series/series-def.js";
import { logSchema, limitsSchema, positiveInt, treeSchema } from "../wire/wire-config.js";
import { remoteWriteSchema } from "./outputs/remote-write/remote-write-config.js";
import { alertmanagerSchema } from "./events/alertmanager.js";
import { webhookSchema } from "./events/webhook.js";
import { stragglerSchema } from "./fleet/stragglers.js";
import { jobsConfigSchema } from "./fleet/job-reports.js";
import { centralSchema, clustersSchema } from "./outputs/central/central-config.js";

const aggregateSchema = z.strictObject({
  /** The aggregate's metric name on the page (`cluster:node_load1:avg`). */
  record: z.string().refine(isMetricName, "expected a Prometheus metric name"),
  /** How the nodes' values combine. */
  expr: z.enum(["sum", "avg", "min", "max", "count"]),
  /** The nodes' metric it is made of. */
  metric: z.string().refine(isMetricName, "expected a Prometheus metric name"),
  /** Labels kept: one aggregate per combination of their values ([]: one for the whole root). */
  by: z.array(z.string()).default([]),
});

export const rootConfigSchema = z
  .strictObject({
    /** Path of the topology file (`banyan topology generate`); or --topology. */
    topology: z.string().min(1).optional(),
    /** This root's name in the topology; or --name. */
    name: z.string().min(1).optional(),
    /** gRPC listen address; default: the topology's address for this root. */
    listen: z.string().optional(),
    /** HTTP address for /metrics; default: the topology's. */
    http: z.string().optional(),
    /** The trees' sampling interval (sets the default of deadAfterMs). */
    intervalMs: positiveInt.default(1000),
    /** A node silent this long is down: banyan_node_up 0, its series leave the page. Default 4 × intervalMs: a tick, the nodes' ack timeout (1 × intervalMs), a failover and one to spare (src/wire/tree-timing.ts). */
    deadAfterMs: positiveInt.optional(),
    /** A node down this long is forgotten. */
    forgetAfterMs: positiveInt.default(600_000),
    /**
     * An origin that needs a keyframe again soon after one waits at least this long before the
     * request, doubling each time up to keyframeIntervalMs (a flapping node costs about one
     * keyframe per keyframe interval).
     */
    resyncIntervalMs: positiveInt.default(1000),
    /** The agents' keyframe interval: the longest a flapping origin waits for its next keyframe request. */
    keyframeIntervalMs: positiveInt.default(60_000),
    /**
     * Keyframe requests per second at most (after a restart, a root failover, a gap). Default:
     * derived from what applying a keyframe costs this root, a quarter of a core's worth.
     */
    resyncPerS: positiveInt.optional(),
    /** Keyframe requests that may leave at once after a quiet spell. */
    resyncBurst: positiveInt.default(200),
    /** zlib level of gzip responses to /metrics (Prometheus always asks for gzip); 0: never compress. */
    gzipLevel: z.number().int().min(0).max(9).default(1),
    /** false: expose only the aggregates, not the nodes' series. */
    exposeRaw: z.boolean().default(true),
    /** Aggregates kept as frames arrive: each `record{by labels}` = expr of metric over this root's nodes. */
    aggregates: z.array(aggregateSchema).default([]),
    /** Receivers this root writes every applied change to (Prometheus remote_write): docs/outputs.md. */
    remoteWrite: z.array(remoteWriteSchema).default([]),
    /** Events (node, tree and job state changes) and where they go: docs/outputs.md. */
    events: z
      .strictObject({
        /** Alertmanagers (API v2) every alert goes to, each with an optional label filter. */
        alertmanagers: z.array(alertmanagerSchema).default([]),
        /** Webhooks every event goes to (JSON POSTs, HMAC-signed, retried), each with filters. */
        webhooks: z.array(webhookSchema).default([]),
        /** A firing alert is re-sent this often (endsAt = now + 4 × this). */
        resendMs: positiveInt.default(60_000),
        /** A tree is degraded while fewer than this share of its nodes are up at its root. */
        treeDegradedBelow: z.number().min(0).max(1).default(0.9),
        /** Labels events of these nodes carry (a hostlist each): racks, Slurm features, whatever destinations filter on. */
        nodeLabels: z
          .array(
            z.strictObject({
              /** A hostlist (`n[001-128]`). */
              nodes: z.string().min(1),
              /** The labels its nodes' events carry. */
              labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, "expected a label name"), z.string()),
            }),
          )
          .default([]),
        /** A resync storm: more origins than this waiting for their keyframe request at once. */
        resyncStormAbove: positiveInt.default(500),
        /** Nodes of a running job far under the job's median (job_straggler). */
        stragglers: stragglerSchema.default({ metrics: ["banyan_job_cpu_seconds_total"], belowMedian: 0.5, windowMs: 120_000, minNodes: 3 }),
        /** A file the root appends every job's end to (JSON lines), for `banyan report usage`. */
        jobLog: z.string().min(1).optional(),
        /** Events kept for /api/v1/events. */
        keep: positiveInt.max(1_000_000).default(10_000),
        /** After the root's start, nodes coming up are its start, not joins, and trees are not judged; default max(10 s, 3 × deadAfterMs). */
        startupMs: positiveInt.optional(),
      })
      .default({
        alertmanagers: [],
        webhooks: [],
        nodeLabels: [],
        stragglers: { metrics: ["banyan_job_cpu_seconds_total"], belowMedian: 0.5, windowMs: 120_000, minNodes: 3 },
        resendMs: 60_000,
        resyncStormAbove: 500,
        treeDegradedBelow: 0.9,
        keep: 10_000,
      }),
    /** Jobs' report cards: the site's rules (notes), the score's weights, how many cards are kept (docs/slurm.md#report-cards). */
    jobs: jobsConfigSchema,
    /** This root uplinks into a central Banyan (banyan topology central), forwarding what `forward` allows. */
    central: centralSchema.optional(),
    /** The watch API (GET /api/v1/watch, /api/v1/query, and gRPC banyan.v1.Watch when grpcListen is set). */
    watch: z
      .strictObject({
        /** host:port of the gRPC Watch service; unset: no gRPC port (SSE and query stay on the HTTP port). */
        grpcListen: z.string().optional(),
        /** Watchers at once, all forms together; default 256. */
        maxWatchers: positiveInt.optional(),
        /** Series one watch may follow; default 100,000. */
        maxSeriesPerWatch: positiveInt.optional(),
        /** Bytes waiting for one slow watcher; past it the watcher is closed (it may reconnect); default 4 MiB. */
        maxPendingBytes: positiveInt.optional(),
      })
      .default({}),
    /** At a central root: what each cluster may cost it (series, origins, bytes per second), with overrides by cluster. */
    clusters: clustersSchema,
    /** Heap and external memory past which no new origin or series is taken; default 80 % of the heap limit (--max-old-space-size). */
    memoryBudgetBytes: positiveInt.optional(),
    /** Bounds on the HTTP side (/metrics and the APIs): see src/core/http-bounds.ts. */
    web: z
      .strictObject({
        ...httpBoundsFields,
        /** Prometheus' web config file (tls_server_config, basic_auth_users) for /metrics and the APIs. */
        configFile: z.string().min(1).optional(),
      })
      .default({}),
    /** The wire's limits, enforced where bytes arrive: a peer past one has its frame or stream refused and counted. */
    limits: limitsSchema,
    /** Bounds on the tree port (the children's connections and streams) and its mutual TLS. */
    tree: treeSchema,
    /** Logging. */
    log: logSchema,
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.aggregates.forEach((a, k) => {
      if (seen.has(a.record)) ctx.addIssue({ code: "custom", path: ["aggregates", k, "record"], message: `expected a unique record name (${a.record} appears twice)`, input: a.record });
      seen.add(a.record);
    });
    const urls = new Set<string>();
    const dirs = new Set<string>();
    c.remoteWrite.forEach((w, k) => {
      if (urls.has(w.url)) ctx.addIssue({ code: "custom", path: ["remoteWrite", k, "url"], message: "expected a url not given twice", input: w.url });
      urls.add(w.url);
      if (w.queue.dir !== undefined && dirs.has(w.queue.dir)) ctx.addIssue({ code: "custom", path: ["remoteWrite", k, "queue", "dir"], message: "expected a directory of its own for each receiver", input: w.queue.dir });
      if (w.queue.dir !== undefined) dirs.add(w.queue.dir);
    });
  });

export type RootConfig = z.infer<typeof rootConfigSchema>;

export function parseRootConfig(raw: unknown, source: ConfigSource = "root config"): Readonly<RootConfig> {
  return parseConfig(rootConfigSchema, raw, source);
}
