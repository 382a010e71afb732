import type { Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { TreeTls } from "./tree-tls.js";
import type { WireLimits } from "./wire-limits.js";

// What an uplink session is given and says: its states, where its parents are, what it asks its
// owner, its timings. The session itself is uplink-session.ts.

/** What a stream says first (the proto's Hello, as its owner gives it). */
export interface Hello {
  readonly node: string;
  readonly tree: number;
  readonly epoch: bigint;
  /** The sending process, the same on each of its streams (0: not said); see Hello.instance in the proto. */
  readonly instance?: bigint;
}

/**
 * The status details a parent ends a stream with when a newer stream of the same node replaced it
 * (ABORTED). Received on a node's current stream, it means another process speaks with this node's
 * name: two agents given one name.
 */
export const replacedDetails = (node: string): string => `replaced by a newer stream of ${node}`;

/**
 * The status details a parent refuses a Hello with (ALREADY_EXISTS) when another process, alive,
 * holds a stream for that node's name there: two agents given one name. The parent keeps the
 * healthy stream; the newcomer is told so and holds off (NAMED_TWICE_HOLD_MS).
 */
export const takenDetails = (node: string): string => `another live process holds a stream for ${node} here (two agents with one name?)`;

/**
 * How long a node whose stream another agent of its name replaced stays where its fallback chain
 * took it (no move back to that parent, no retry of a one-parent chain): the two take turns every
 * five minutes instead of replacing each other every second.
 */
export const NAMED_TWICE_HOLD_MS = 300_000;

/** The states of an uplink (UplinkSession draws the machine). */
export type UplinkState = "connecting" | "ready" | "failing-over" | "healing" | "backoff" | "closed";

export interface UplinkTarget {
  readonly name: string;
  readonly address: string;
  /** The root its path ends at, when known: a move between two roots is a handover across roots (Handover). */
  readonly root?: string;
}

export interface UplinkHooks {
  /** The Hello of a new stream; the owner bumps its epoch here and queues a keyframe. */
  hello(target: UplinkTarget): Hello;
  /** The parent asks these origins (own or below) for keyframes. */
  onResync(origins: readonly string[]): void;
  /** LEAVE frames for the node and the origins behind it, sent before a deliberate move. */
  leaving(): Frame[];
  /** Every transition, for the owner's status. */
  onState?(state: UplinkState, target: UplinkTarget): void;
}

export interface UplinkOptions {
  /** Batches leave at least this often. Default 20 ms: sample-to-root ≈ depth × flush. */
  readonly flushMs: number;
  /** Frames held while the parent is slow or away. */
  readonly maxQueuedFrames: number;
  /** A stream with a batch unacked this long is declared dead (a hung parent). Default 2 × interval. */
  readonly ackTimeoutMs: number;
  /** A stream that gets no answer to its Hello this long is given up for the next in the chain. */
  readonly connectTimeoutMs: number;
  /** The planned parent must answer probes this long before the node moves back to it. */
  readonly healAfterMs: number;
  /** How often the planned parent is probed while it answers. */
  readonly probeIntervalMs: number;
  /**
   * A deliberate move is make-before-break: the old stream stays open, unused, this long after the
   * new one is ready and its parent acks what it is sent (time for the new path's root to apply the keyframe),
   * and only then carries the LEAVE frames. Default 2000 (RelayNode passes 2 × interval).
   */
  readonly handoverMs?: number;
  readonly limits: WireLimits;
  /** Mutual TLS toward the parents (default: none). */
  readonly tls?: TreeTls;
}
