import { SyntheticSource } from "../src/agent/index.js";
import type { Codec } from "../src/gen/banyan/v1/uplink_pb.js";
import { DeltaEncoder } from "../src/series/delta-encoder.js";
import { PrecisionRules } from "../src/series/precision.js";
import type { SeriesDef } from "../src/series/series-def.js";
import { encodePayload } from "../src/wire/payload-codec.js";
import { ExpositionCache } from "../src/root/exposition/index.js";
import { OriginState } from "../src/root/ingest/index.js";
import { DEFAULT_SERIES_LIMITS } from "../src/series/payload.js";
import { gzipSync } from "node:zlib";

/**
 * Real encoded frames for simulated nodes: a few template nodes run the real synthetic source and
 * encoder for one keyframe period; every simulated node replays one template from its own offset,
 * under its own name, epoch and sequence. So leaves cost the bench almost nothing, while relays and
 * roots handle exactly the bytes real agents would send.
 */
export interface EncodedPayload {
  readonly codec: Codec;
  readonly bytes: Uint8Array;
}

export interface FrameTemplate {
  /** deltas[k]: the frame of tick k after tick k-1 (null: nothing moved, only an alive record). */
  readonly deltas: readonly (EncodedPayload | null)[];
  /** keys[k]: a full keyframe of the state at tick k (first frame and resyncs). */
  readonly keys: readonly EncodedPayload[];
  /** The periodic keyframe at tick 0 of each period: values only, as agents send it. */
  readonly periodicKey: EncodedPayload;
}

export interface TemplateOptions {
  readonly count: number;
  readonly series: number;
  readonly changeRate: number;
  readonly precision: number;
  readonly seed: number;
  /** Ticks per keyframe period (keyframeIntervalMs / intervalMs). */
  readonly period: number;
}

export function buildTemplates(o: TemplateOptions): FrameTemplate[] {
  const out: FrameTemplate[] = [];
  for (let m = 0; m < o.count; m++) {
    const rules = new PrecisionRules([], { relative: o.precision, absolute: 0 });
    const stream = new DeltaEncoder(rules);
    const keyer = new DeltaEncoder(rules);
    const src = new SyntheticSource({ series: o.series, changeRate: o.changeRate, seed: o.seed + m, node: `template${m}` });
    const ids = new Map<SeriesDef, [number, number]>();
    const defs: SeriesDef[] = [];
    const target = {
      define: (d: SeriesDef): number => {
        const pair: [number, number] = [stream.define(d), keyer.define(d)];
        ids.set(d, pair);
        defs.push(d);
        return defs.length - 1;
      },
      set: (id: number, v: number): void => {
        const [a, b] = ids.get(defs[id]!)!;
        stream.set(a, v);
        keyer.set(b, v);
      },
      remove: (): void => undefined,
    };
    const deltas: (EncodedPayload | null)[] = [];
    const keys: EncodedPayload[] = [];
    let periodicKey: EncodedPayload | null = null;
    for (let k = 0; k < o.period; k++) {
      src.collect(target);
      const f = stream.encode();
      deltas.push(f === null ? null : encodePayload(f.payload));
      keyer.requestKeyframe();
      keys.push(encodePayload(keyer.encode()!.payload));
      if (k === 0) {
        keyer.requestKeyframe("values");
        periodicKey = encodePayload(keyer.encode()!.payload);
      }
    }
    out.push({ deltas, keys, periodicKey: periodicKey! });
  }
  return out;
}

/** The same samples as a Prometheus scrape of one node would carry: text and gzip bytes. */
export function prometheusBytesPerNode(series: number, changeRate: number, seed: number): { text: number; gzip: number } {
  const enc = new DeltaEncoder();
  const src = new SyntheticSource({ series, changeRate, seed, node: "template0" });
  src.collect({ define: (d) => enc.define(d), set: (id, v) => enc.set(id, v), remove: () => undefined });
  const cache = new ExpositionCache();
  const st = new OriginState("sim0001", cache, DEFAULT_SERIES_LIMITS);
  st.apply(enc.encode()!.payload, "key");
  st.setVisible(true);
  const text = cache.renderText("text");
  return { text: Buffer.byteLength(text), gzip: gzipSync(text).length };
}
