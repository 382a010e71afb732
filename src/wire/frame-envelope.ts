import { Codec, FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { WireLimits } from "./wire-limits.js";

const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** A node, or a cluster's node at a central root (`siteA/n1`: see OriginAuthority). */
const ORIGIN_NAME = /^(?:[A-Za-z0-9][A-Za-z0-9._-]*\/)?[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A node name as topology and hostlists allow it. */
export function isNodeName(name: string, limits: WireLimits): boolean {
  return name.length <= limits.maxNameLength && NODE_NAME.test(name);
}

/** The only names a frame may carry: a node's, or `<cluster>/<node>`. */
export function isOriginName(name: string, limits: WireLimits): boolean {
  return name.length <= limits.maxNameLength && ORIGIN_NAME.test(name);
}

/**
 * Checks a frame's envelope where it arrives, without decoding the payload (relays forward bytes).
 * Returns null when it may pass, else the reason it is dropped.
 */
export function frameProblem(f: Frame, limits: WireLimits): string | null {
  if (!isOriginName(f.origin, limits)) return `bad origin name ${JSON.stringify(f.origin.slice(0, 64))}`;
  if (f.codec !== Codec.MSGPACK && f.codec !== Codec.MSGPACK_LZ4) return `${f.origin}: unknown codec ${f.codec}`;
  if (f.kind === FrameKind.LEAVE) return f.payload.length === 0 ? null : `${f.origin}: a LEAVE frame carries no payload`;
  if (f.kind !== FrameKind.KEY && f.kind !== FrameKind.DELTA && f.kind !== FrameKind.VALUES && f.kind !== FrameKind.EVENTS) return `${f.origin}: unknown frame kind ${f.kind}`;
  if (f.payload.length === 0) return `${f.origin}: empty payload`;
  if (f.payload.length > limits.maxDecompressedBytes) return `${f.origin}: payload of ${f.payload.length} bytes over the limit`;
  if (f.seq === 0n) return `${f.origin}: sequence 0`;
  if (f.epoch === 0n) return `${f.origin}: epoch 0 (only a child's own frames may leave their epoch to the Hello)`;
  return null;
}

export function aliveProblem(a: Alive, limits: WireLimits): string | null {
  if (!isOriginName(a.origin, limits)) return `bad alive origin ${JSON.stringify(a.origin.slice(0, 64))}`;
  return a.epoch === 0n ? `${a.origin}: alive with epoch 0 (only a child's own may leave their epoch to the Hello)` : null;
}
