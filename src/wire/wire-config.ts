import { z } from "zod";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "./wire-limits.js";

/** Schema pieces every daemon's config shares: wire limits, logging, uplink timing. */
export const positiveInt = z.number().int().positive();

export const limitsSchema = z
  .strictObject({
    maxMessageBytes: positiveInt.optional(),
    maxFramesPerBatch: positiveInt.optional(),
    maxDecompressedBytes: positiveInt.optional(),
    maxNameLength: positiveInt.optional(),
    maxSeriesPerOrigin: positiveInt.optional(),
    maxLabels: positiveInt.optional(),
    maxStringLength: positiveInt.optional(),
    maxStrings: positiveInt.optional(),
    maxStringChars: positiveInt.optional(),
  })
  .default({});

export function resolveLimits(partial: z.infer<typeof limitsSchema>): WireLimits {
  const out: Record<string, number> = { ...DEFAULT_WIRE_LIMITS };
  for (const [k, v] of Object.entries(partial)) if (v !== undefined) out[k] = v;
  return Object.freeze(out) as unknown as WireLimits;
}

export const logSchema = z
  .strictObject({
    level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  })
  .default({ level: "info" });

/** Listen and topology fields of a daemon that sits in the trees. */
export const nodeSchemaFields = {
  /** Path of the topology file. */
  topology: z.string().min(1).optional(),
  /** This daemon's name in the topology. */
  name: z.string().min(1).optional(),
  /** gRPC listen address; default: the topology's address for this name. */
  listen: z.string().optional(),
  /** Sampling interval; the trees' clock. */
  intervalMs: positiveInt.default(1000),
  /** Batches leave at least this often. */
  flushMs: positiveInt.default(20),
  /** Frames held toward the parent before the oldest deltas are dropped (and resynced). */
  maxQueuedFrames: positiveInt.default(20_000),
  /** A parent that has not acked a batch this long is dead or hung; default 2 × intervalMs. */
  ackTimeoutMs: positiveInt.optional(),
  /** After a failover, the planned parent must answer probes this long before the node moves back; default 10 × intervalMs. */
  healAfterMs: positiveInt.optional(),
  limits: limitsSchema,
  log: logSchema,
};

const treeNodeSchema = z.object(nodeSchemaFields);
/** The settings every node in the trees takes (agent and relay configs both carry them). */
export type TreeNodeConfig = Readonly<Pick<z.infer<typeof treeNodeSchema>, "listen" | "intervalMs" | "flushMs" | "maxQueuedFrames" | "ackTimeoutMs" | "healAfterMs" | "limits">>;
