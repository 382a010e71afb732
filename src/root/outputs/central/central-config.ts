import { z } from "zod";
import { Selector } from "../../../series/selector.js";
import { positiveInt } from "../../../wire/wire-config.js";
import { treeTlsSchema } from "../../../wire/tree-tls.js";

/** A PromQL vector selector, checked when the config is read. */
export const selectorString = z.string().superRefine((s, ctx) => {
  const problem = Selector.tryParse(s);
  if (typeof problem === "string") ctx.addIssue({ code: "custom", message: `expected a PromQL selector: ${problem}`, input: s });
});

/**
 * `central:` in a cluster root's config: this root uplinks into a central Banyan (see
 * `banyan topology central`), forwarding what `forward` allows.
 */
export const centralSchema = z.strictObject({
  /** The central topology file (its roots, and this root as a node with its cluster). */
  topology: z.string().min(1),
  /** This root's name in the central topology; default: its own name. */
  name: z.string().min(1).optional(),
  /** What goes up to the central roots. */
  forward: z
    .strictObject({
      /** raw: the nodes' series (as allow and deny say); aggregates: this root's aggregates only; none: no series (events and the cluster summary only). */
      series: z.enum(["raw", "aggregates", "none"]).default("raw"),
      /** raw: a series goes up when it matches one of these (empty: every series) and none of `deny`. */
      allow: z.array(selectorString).max(256).default([]),
      /** raw: a series matching one of these stays in the cluster, whatever `allow` says. */
      deny: z.array(selectorString).max(256).default([]),
      /** The root's events (node, tree, job) go up too, with a `cluster` label. */
      events: z.boolean().default(true),
    })
    .default({ series: "raw", allow: [], deny: [], events: true }),
  /** Batches toward the central root leave at least this often. */
  flushMs: positiveInt.default(20),
  /** Frames held while the central root is slow or away (the oldest deltas go first, repaired by a resync). */
  maxQueuedFrames: positiveInt.default(100_000),
  /** A central root that acks nothing this long is failed over from; default 2 × intervalMs. */
  ackTimeoutMs: positiveInt.optional(),
  /** The primary central root must answer this long before the root moves back to it; default 10 × intervalMs. */
  healAfterMs: positiveInt.optional(),
  /** Mutual TLS toward the central roots; default: tree.tls (the root's own certificate). */
  tls: treeTlsSchema.optional(),
});
export type CentralConfig = z.infer<typeof centralSchema>;

const clusterLimitFields = {
  /** Series the cluster's origins may hold here, all together. */
  maxSeries: positiveInt.optional(),
  /** Origins (nodes, and each of its roots' summaries) the cluster may have here. */
  maxOrigins: positiveInt.optional(),
  /** Payload bytes per second the cluster may send here (a token bucket of two seconds' worth). */
  maxBytesPerS: positiveInt.optional(),
};

/** `clusters:` in a central root's config: what each cluster may cost it, with per-cluster overrides. */
export const clustersSchema = z
  .strictObject({
    ...clusterLimitFields,
    /** Overrides by cluster name. */
    overrides: z.record(z.string(), z.strictObject(clusterLimitFields)).default({}),
  })
  .default({ overrides: {} });
export type ClustersConfig = z.infer<typeof clustersSchema>;

export interface ClusterLimit {
  readonly maxSeries: number;
  readonly maxOrigins: number;
  readonly maxBytesPerS: number;
}

/** Defaults: 5 M series, 100,000 origins, 64 MiB/s — room for a 10,000-node cluster sent raw. */
export const DEFAULT_CLUSTER_LIMIT: ClusterLimit = Object.freeze({ maxSeries: 5_000_000, maxOrigins: 100_000, maxBytesPerS: 64 * 1024 * 1024 });

/** A cluster's limits: its override, over the config's defaults, over DEFAULT_CLUSTER_LIMIT. */
export function clusterLimit(c: ClustersConfig, cluster: string): ClusterLimit {
  const o = c.overrides[cluster] ?? {};
  return {
    maxSeries: o.maxSeries ?? c.maxSeries ?? DEFAULT_CLUSTER_LIMIT.maxSeries,
    maxOrigins: o.maxOrigins ?? c.maxOrigins ?? DEFAULT_CLUSTER_LIMIT.maxOrigins,
    maxBytesPerS: o.maxBytesPerS ?? c.maxBytesPerS ?? DEFAULT_CLUSTER_LIMIT.maxBytesPerS,
  };
}
