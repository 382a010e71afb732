import { create } from "@bufbuild/protobuf";
import { AliveSchema, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";

/**
 * Where the daemons meet. A node's child-facing server and its sampler are frame sources; an
 * uplink session (toward a parent) and a root's store are frame sinks. A node's daemon
 * (src/node/node-daemon.ts) wires sampler + child server → uplink; a root's (root-daemon.ts) child
 * server → store.
 */
export interface FrameSink {
  /**
   * Frames and alive records of one batch, own or a child's. Called on the event loop; must not
   * block. `from` names the child link they came through (the same object for one stream), so a
   * sink can tell a congested link from a silent origin. A sink that takes the batch in slices
   * returns a promise: the source reads nothing more from that link until it settles.
   */
  accept(frames: readonly Frame[], alive: readonly Alive[], from?: object): void | Promise<void>;
}

/** The way down: asks origins (own or below) for a keyframe. */
export interface Downlink {
  resync(origins: readonly string[]): void;
}

/** Frames to send up, with the origins whose frames were dropped (so they get a resync). */
export interface QueueDrop {
  readonly origins: readonly string[];
  readonly frames: number;
}

/** An alive record: proves an origin alive in a tick where it had nothing to send. */
export function aliveRecord(origin: string, epoch: bigint, seq: bigint, timeMs: number): Alive {
  return create(AliveSchema, { origin, epoch, seq, timeMs: BigInt(timeMs) });
}
