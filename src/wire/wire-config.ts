import { z } from "zod";
import { overDefaults } from "../core/config-file.js";
import { DEFAULT_TREE_PORT, type TreePortOptions } from "./child-server.js";
import { treeTlsSchema } from "./tree-tls.js";
import { DEFAULT_WIRE_LIMITS, type WireLimits } from "./wire-limits.js";

/** Frames a node holds toward its parent by default (maxQueuedFrames). */
export const DEFAULT_MAX_QUEUED_FRAMES = 20_000;

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
  return overDefaults(DEFAULT_WIRE_LIMITS, partial);
}

/** Bounds on the tree port (see ConnectionGate and ChildServer); unset keys take DEFAULT_TREE_PORT. */
export const treeSchema = z
  .strictObject({
    maxConnections: positiveInt.optional(),
    maxConnectionsPerAddress: positiveInt.optional(),
    handshakeTimeoutMs: positiveInt.optional(),
    maxStreamsPerConnection: positiveInt.optional(),
    maxOriginsPerLink: positiveInt.optional(),
    /** Mutual TLS on the tree (see TreeTls); without it the tree is not authenticated. */
    tls: treeTlsSchema.optional(),
  })
  .default({});

/** The tree port's bounds: the config's, over the defaults. */
export function resolveTreePort(partial: z.infer<typeof treeSchema>): TreePortOptions {
  return overDefaults(DEFAULT_TREE_PORT, partial);
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
  maxQueuedFrames: positiveInt.default(DEFAULT_MAX_QUEUED_FRAMES),
  /** A parent that has not acked a batch this long is dead or hung; default 1 × intervalMs (tree-timing.ts: with the roots' deadAfterMs, 3 × intervalMs, a child of a silent relay is late, not down). */
  ackTimeoutMs: positiveInt.optional(),
  /** After a failover, the planned parent must answer probes this long before the node moves back; default 10 × intervalMs. */
  healAfterMs: positiveInt.optional(),
  limits: limitsSchema,
  tree: treeSchema,
  log: logSchema,
};

const treeNodeSchema = z.object(nodeSchemaFields);
/** The settings every node in the trees takes (agent and relay configs both carry them). */
export type TreeNodeConfig = Readonly<Pick<z.infer<typeof treeNodeSchema>, "listen" | "intervalMs" | "flushMs" | "maxQueuedFrames" | "ackTimeoutMs" | "healAfterMs" | "limits" | "tree">>;
