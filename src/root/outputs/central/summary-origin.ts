import { create } from "@bufbuild/protobuf";
import { FrameKind, FrameSchema, type Frame } from "../../../gen/banyan/v1/uplink_pb.js";
import { DeltaEncoder } from "../../../series/delta-encoder.js";
import type { SeriesLimits } from "../../../series/payload.js";
import { SeriesType, seriesKey, type LabelPairs, type SeriesDef } from "../../../series/series-def.js";
import { encodePayload } from "../../../wire/payload-codec.js";
import { FORWARD_PRECISION, freshSeq } from "./forwarded-origin.js";
import type { AggregatesView } from "../root-output.js";

/** What a cluster's root says of itself at the central root, whatever its filter. */
export interface RootSummary {
  /** Nodes up at this root. */
  readonly nodesUp: number;
  /** Nodes the topology plans under this root. */
  readonly nodesExpected: number;
}

const NODES_UP: SeriesDef = { name: "banyan_cluster_nodes_up", labels: [], type: SeriesType.Gauge, family: "banyan_cluster_nodes_up", help: "Nodes up at this cluster root (the central view of a cluster sums its roots)." };
const NODES_EXPECTED: SeriesDef = {
  name: "banyan_cluster_nodes_expected",
  labels: [],
  type: SeriesType.Gauge,
  family: "banyan_cluster_nodes_expected",
  help: "Nodes the cluster's topology plans under this root.",
};

/**
 * The cluster root's own origin at the central root, `<cluster>/<root>`: its node counts and, unless
 * the filter sends no series, its aggregates (each `record{by labels}`; a cluster with several roots
 * has one partial aggregate per root: sum, count, min and max of the parts give the cluster's).
 * Encoded once per tick, exactly, change-only like any origin.
 */
export class SummaryOrigin {
  private encoder: DeltaEncoder;
  readonly epoch = BigInt(Date.now());
  seq = freshSeq();
  private readonly ids = new Map<string, number>();
  private readonly seen = new Set<string>();
  private readonly defs = new Map<string, SeriesDef>();

  constructor(
    readonly wireName: string,
    private readonly limits: SeriesLimits,
  ) {
    this.encoder = new DeltaEncoder(FORWARD_PRECISION, limits);
  }

  /** Everything afresh at the next tick (the central root asked, or a new stream). */
  restart(): void {
    this.encoder = new DeltaEncoder(FORWARD_PRECISION, this.limits);
    this.ids.clear();
  }

  /** This tick's frame, or null when nothing changed. */
  tick(summary: RootSummary, aggregates: AggregatesView | null, nowMs: number): Frame | null {
    this.seen.clear();
    this.put(NODES_UP.name, NODES_UP, summary.nodesUp);
    this.put(NODES_EXPECTED.name, NODES_EXPECTED, summary.nodesExpected);
    aggregates?.forEachResult((record, labels, value) => {
      const key = seriesKey(record, labels);
      this.put(key, this.defs.get(key) ?? this.defOf(key, record, labels), value);
    });
    for (const [key, id] of this.ids) {
      if (this.seen.has(key)) continue;
      this.encoder.remove(id);
      this.ids.delete(key);
      this.defs.delete(key);
    }
    const f = this.encoder.encode();
    if (f === null) return null;
    const kind = f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA;
    const wire = encodePayload(f.payload);
    return create(FrameSchema, { origin: this.wireName, epoch: this.epoch, seq: ++this.seq, timeMs: BigInt(nowMs), kind, codec: wire.codec, payload: wire.bytes });
  }

  private defOf(key: string, record: string, labels: LabelPairs): SeriesDef {
    const sorted = [...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const def: SeriesDef = { name: record, labels: sorted, type: SeriesType.Gauge, family: record, help: "An aggregate kept by a cluster's root." };
    this.defs.set(key, def);
    return def;
  }

  /** `key` is the series' key (seriesKey of its name and labels), computed once by the caller. */
  private put(key: string, def: SeriesDef, value: number): void {
    this.seen.add(key);
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.encoder.define(def);
      if (id < 0) return;
      this.ids.set(key, id);
    }
    this.encoder.set(id, value);
  }
}
