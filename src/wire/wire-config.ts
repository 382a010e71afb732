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
    /** Largest gRPC message taken or sent (a batch up, resyncs down), bytes; default 16 MiB. */
    maxMessageBytes: positiveInt.optional(),
    /** Most frames and alive records in one batch; default 4096. */
    maxFramesPerBatch: positiveInt.optional(),
    /** Largest payload after lz4, bytes (no lz4 bomb gets past it); default 8 MiB. */
    maxDecompressedBytes: positiveInt.optional(),
    /** Longest node (origin) name; default 255. */
    maxNameLength: positiveInt.optional(),
    /** Highest series id + 1 an origin may use: the series a node may have; default 100,000. */
    maxSeriesPerOrigin: positiveInt.optional(),
    /** Most labels on one series; default 32. */
    maxLabels: positiveInt.optional(),
    /** Longest metric name, label name, label value or help text, in characters; default 4096. */
    maxStringLength: positiveInt.optional(),
    /** Most strings an origin's string table may hold; default 400,000. */
    maxStrings: positiveInt.optional(),
    /** Most characters an origin's string table may hold, all strings together (what its memory at a root is bounded by); default 8,000,000. */
    maxStringChars: positiveInt.optional(),
  })
  .default({});

export function resolveLimits(partial: z.infer<typeof limitsSchema>): WireLimits {
  return overDefaults(DEFAULT_WIRE_LIMITS, partial);
}

/** Bounds on the tree port (see ConnectionGate and ChildServer); unset keys take DEFAULT_TREE_PORT. */
export const treeSchema = z
  .strictObject({
    /** Connections the tree port holds at most, all peers together; default 4096. */
    maxConnections: positiveInt.optional(),
    /** Connections held at most from one address; default 256. */
    maxConnectionsPerAddress: positiveInt.optional(),
    /** A connection, or a stream, that has not said Hello this long after it opened is closed; default 10,000. */
    handshakeTimeoutMs: positiveInt.optional(),
    /** Streams one connection may open; default 1024. */
    maxStreamsPerConnection: positiveInt.optional(),
    /** Origins one child's stream may carry (a cluster's root at a central root names its own nodes); default 100,000. */
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
    /** Least severe level logged (pino's levels; JSON lines on stderr). */
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
  /** The wire's limits, enforced where bytes arrive: a peer past one has its frame or stream refused and counted. */
  limits: limitsSchema,
  /** Bounds on the tree port (the children's connections and streams) and its mutual TLS. */
  tree: treeSchema,
  /** Logging. */
  log: logSchema,
};

const treeNodeSchema = z.object(nodeSchemaFields);
/** The settings every node in the trees takes (agent and relay configs both carry them). */
export type TreeNodeConfig = Readonly<Pick<z.infer<typeof treeNodeSchema>, "listen" | "intervalMs" | "flushMs" | "maxQueuedFrames" | "ackTimeoutMs" | "healAfterMs" | "limits" | "tree">>;
