import { create } from "@bufbuild/protobuf";
import { FrameKind, FrameSchema, type Frame } from "../../../gen/banyan/v1/uplink_pb.js";
import type { AppliedFrame } from "../../../series/delta-decoder.js";
import { DeltaEncoder } from "../../../series/delta-encoder.js";
import type { SeriesLimits } from "../../../series/payload.js";
import { EXACT, PrecisionRules } from "../../../series/precision.js";
import { encodePayload } from "../../../wire/payload-codec.js";
import type { ForwardFilter } from "./forward-filter.js";
import type { DecodedSeries, OriginView } from "../root-output.js";

/**
 * Exact re-encoding: the cluster's root already holds each value within the node's bound, and
 * forwarding exactly what it holds keeps the central copy within that same bound (a second lossy
 * hop would add a second error). It changes only when the node sent a change, so it stays change-only.
 */
export const FORWARD_PRECISION = new PrecisionRules([], EXACT);

/**
 * A sequence number above any an earlier forwarder of this origin in this process, or before a
 * restart, can have used: a reloaded output starts afresh without the central root taking its
 * frames for duplicates (frames per origin come ~1 per interval, far under 1,000 per ms).
 */
export function freshSeq(): bigint {
  return BigInt(Date.now()) * 1000n;
}

/**
 * One node's series as they go on from a cluster's root to a central root, under the name
 * `<cluster>/<node>`: the filter's choice of its series, re-encoded by a DeltaEncoder of its own, in
 * the node's own epoch (a node that moved to another root of its cluster arrives there with a newer
 * epoch, so the central root takes the newer path and ignores the older one's leave).
 * Cost: one encoder per forwarded node (~40 B per series) and, per applied frame, the changed ids.
 */
export class ForwardedOrigin {
  private encoder: DeltaEncoder;
  /** The cluster root's series id → the encoder's id; -1: not forwarded. */
  private idMap = new Int32Array(0);
  /** The cluster root's decoder the map is of: a KEY frame there brings a new one (and new ids). */
  private source: DecodedSeries | null = null;
  epoch: bigint;
  seq = freshSeq();
  /** Set when a frame went up since the last tick (else the tick proves it alive). */
  sent = false;

  constructor(
    readonly wireName: string,
    private readonly filter: ForwardFilter,
    private readonly limits: SeriesLimits,
    st: OriginView,
  ) {
    this.epoch = st.epoch;
    this.encoder = new DeltaEncoder(FORWARD_PRECISION, limits);
  }

  /** Whether a frame of this origin went up (an origin none of whose series is forwarded is never sent, not even alive). */
  announced = false;

  /**
   * Every series afresh (the origin was shown, took a KEY frame at the cluster's root, or the
   * central root asked): a new encoder, whose next frame is a KEY frame.
   */
  restart(st: OriginView): Frame | null {
    this.epoch = st.epoch;
    this.encoder = new DeltaEncoder(FORWARD_PRECISION, this.limits);
    const d = st.decoded;
    this.source = d;
    this.idMap = new Int32Array(d.capacity).fill(-1);
    for (let id = 0; id < d.capacity; id++) this.learn(st, id);
    return this.frame(st);
  }

  /** Follows one applied frame (a KEY frame there restarts); returns the frame to send up, or null when nothing forwarded changed. */
  applied(st: OriginView, a: AppliedFrame): Frame | null {
    if (st.decoded !== this.source) return this.restart(st);
    for (const id of a.gone) {
      if (id < this.idMap.length && this.idMap[id]! >= 0) this.encoder.remove(this.idMap[id]!);
      if (id < this.idMap.length) this.idMap[id] = -1;
    }
    for (const id of a.defined) this.learn(st, id);
    const map = this.idMap;
    let touched = a.defined.length > 0 || a.gone.length > 0 || this.encoder.keyframeDue;
    for (let k = 0; k < a.changedCount; k++) {
      const id = a.changed[k]!;
      const eid = id < map.length ? map[id]! : -1;
      if (eid < 0) continue;
      this.encoder.set(eid, st.value(id));
      touched = true;
    }
    // None of the forwarded series moved: no encode (a walk over every series) at all.
    return touched ? this.frame(st) : null;
  }

  private learn(st: OriginView, id: number): void {
    if (id >= this.idMap.length) {
      const grown = new Int32Array(Math.max(id + 1, 2 * this.idMap.length)).fill(-1);
      grown.set(this.idMap);
      this.idMap = grown;
    }
    const old = this.idMap[id]!;
    if (old >= 0) this.encoder.remove(old);
    const def = st.decoded.def(id);
    const eid = def !== undefined && this.filter.allows(def, st) ? this.encoder.define(def) : -1;
    this.idMap[id] = eid;
    if (eid >= 0) this.encoder.set(eid, st.value(id));
  }

  private frame(st: OriginView): Frame | null {
    if (!this.announced && this.encoder.size === 0) return null;
    this.announced = true;
    const f = this.encoder.encode();
    if (f === null) return null;
    const wire = encodePayload(f.payload);
    this.sent = true;
    const kind = f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA;
    return create(FrameSchema, { origin: this.wireName, epoch: this.epoch, seq: ++this.seq, timeMs: BigInt(st.lastSampleMs), kind, codec: wire.codec, payload: wire.bytes });
  }
}
