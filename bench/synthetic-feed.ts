import { create } from "@bufbuild/protobuf";
import { SyntheticSource } from "../src/agent/index.js";
import { FrameKind, FrameSchema, type Frame } from "../src/gen/banyan/v1/uplink_pb.js";
import { DeltaEncoder } from "../src/series/delta-encoder.js";
import { DEFAULT_PRECISION_RULES, PrecisionRules } from "../src/series/precision.js";
import type { FrameSink } from "../src/wire/frame-flow.js";
import { encodePayload } from "../src/wire/payload-codec.js";

/**
 * Synthetic nodes (node_exporter's names, `series` each, `changeRate` of them moving a tick) encoded
 * as an agent would and handed straight to a root's store: the load of the figure scripts, without
 * agents or gRPC in the way. Each tick's frames carry the tick's time.
 */
export class SyntheticFeed {
  private readonly sources: SyntheticSource[];
  private readonly encoders: DeltaEncoder[];
  private readonly seqs: bigint[];
  /** Payload bytes encoded so far (what the nodes would have sent their root). */
  bytes = 0;

  constructor(
    readonly names: readonly string[],
    series: number,
    changeRate = 0.1,
  ) {
    this.sources = names.map((node) => new SyntheticSource({ node, series, changeRate, seed: 7 }));
    this.encoders = names.map(() => new DeltaEncoder(new PrecisionRules(DEFAULT_PRECISION_RULES)));
    this.seqs = names.map(() => 0n);
  }

  /** One tick of every node: its frame, or none when nothing moved. */
  frames(nowMs: number): Frame[] {
    const out: Frame[] = [];
    for (let k = 0; k < this.names.length; k++) {
      this.sources[k]!.collect(this.encoders[k]!);
      const f = this.encoders[k]!.encode();
      if (f === null) continue;
      const w = encodePayload(f.payload);
      this.bytes += w.bytes.length;
      const kind = f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA;
      out.push(create(FrameSchema, { origin: this.names[k]!, epoch: 1n, seq: ++this.seqs[k]!, timeMs: BigInt(nowMs), kind, codec: w.codec, payload: w.bytes }));
    }
    return out;
  }

  /** One tick, applied at `sink` frame by frame. */
  tick(sink: FrameSink, nowMs: number): void {
    for (const f of this.frames(nowMs)) sink.accept([f], []);
  }
}
