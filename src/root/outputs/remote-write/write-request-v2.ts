import { BinaryReader } from "@bufbuild/protobuf/wire";
import { ProtoBuffer, fieldLen, sampleLen, utf8Len, varintLen, writeSample } from "./proto-buffer.js";
import { WriteRequestWriter, type RequestWriter } from "./write-request.js";

/**
 * Prometheus remote_write 2.0's `io.prometheus.write.v2.Request`, written straight into buffers:
 *
 *   Request    { reserved 1 to 3; repeated string symbols = 4; repeated TimeSeries timeseries = 5; }
 *   TimeSeries { repeated uint32 labels_refs = 1; repeated Sample samples = 2; Metadata metadata = 5; }
 *   Metadata   { MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }
 *
 * Every string once per request in the symbol table (symbols[0] is ""), each series' labels and
 * help as references into it, its type and help inline (no separate metadata request). The series
 * are written as they come; the symbols, known only at the end, go in front when the request is taken.
 */
export class WriteRequestV2Writer implements RequestWriter {
  private readonly symbols = new Map<string, number>();
  private symbolList: string[] = [];
  private readonly seriesBuf = new ProtoBuffer();
  private readonly out = new ProtoBuffer();
  private readonly refs: number[] = [];
  series = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    this.symbols.clear();
    this.symbolList = [""];
    this.symbols.set("", 0);
    this.seriesBuf.pos = 0;
    this.series = 0;
  }

  /** One TimeSeries of one sample (labels as for WriteRequestWriter.sample), with its type (prompb MetricType) and help. */
  sample(names: readonly string[], values: readonly string[], count: number, value: number, timestampMs: number, stale: boolean, type: number, help: string): void {
    if (!(timestampMs >= 0)) timestampMs = 0;
    const refs = this.refs;
    let packedLen = 0;
    for (let k = 0; k < count; k++) {
      const n = this.ref(names[k]!);
      const v = this.ref(values[k]!);
      refs[2 * k] = n;
      refs[2 * k + 1] = v;
      packedLen += varintLen(n) + varintLen(v);
    }
    const helpRef = help === "" ? 0 : this.ref(help);
    const metaLen = (type !== 0 ? 1 + varintLen(type) : 0) + (helpRef !== 0 ? 1 + varintLen(helpRef) : 0);
    const seriesLen = fieldLen(packedLen) + fieldLen(sampleLen(timestampMs)) + (metaLen > 0 ? fieldLen(metaLen) : 0);
    const b = this.seriesBuf;
    b.ensure(fieldLen(seriesLen));
    b.tag(5, 2);
    b.varint(seriesLen);
    b.tag(1, 2);
    b.varint(packedLen);
    for (let k = 0; k < 2 * count; k++) b.varint(refs[k]!);
    writeSample(b, 2, value, timestampMs, stale);
    if (metaLen > 0) {
      b.tag(5, 2);
      b.varint(metaLen);
      if (type !== 0) {
        b.tag(1, 0);
        b.varint(type);
      }
      if (helpRef !== 0) {
        b.tag(3, 0);
        b.varint(helpRef);
      }
    }
    this.series++;
  }

  /** The whole request: symbols, then the series (a view of the writer's buffer, valid until the next reset). */
  view(): Buffer {
    const out = this.out;
    out.pos = 0;
    for (const s of this.symbolList) {
      out.ensure(fieldLen(utf8Len(s)));
      out.str(4, s);
    }
    out.bytes(this.seriesBuf.view());
    return out.view();
  }

  private ref(s: string): number {
    let r = this.symbols.get(s);
    if (r === undefined) {
      r = this.symbolList.length;
      this.symbolList.push(s);
      this.symbols.set(s, r);
    }
    return r;
  }
}

/**
 * A 2.0 request as the 1.0 WriteRequest of the same samples (labels and values; the inline
 * metadata is left out, 1.0 sends it apart): what `protocol: auto` sends once a receiver turned out
 * to speak only 1.0, for the requests already queued in 2.0.
 */
export function v2ToV1(body: Uint8Array): Buffer {
  const r = new BinaryReader(body);
  const symbols: string[] = [];
  const series: Uint8Array[] = [];
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 4) symbols.push(r.string());
    else if (field === 5) series.push(r.bytes());
    else r.skip(wireType);
  }
  const w = new WriteRequestWriter();
  const names: string[] = [];
  const values: string[] = [];
  for (const s of series) {
    const t = new BinaryReader(s);
    let count = 0;
    const samples: { value: number; bits: bigint; ts: number }[] = [];
    while (t.pos < t.len) {
      const [field, wireType] = t.tag();
      if (field === 1) {
        const refs = new BinaryReader(t.bytes());
        for (let k = 0; refs.pos < refs.len; k++) {
          const sym = symbols[refs.uint32()] ?? "";
          if (k % 2 === 0) names[count] = sym;
          else values[count++] = sym;
        }
      } else if (field === 2) {
        const m = new BinaryReader(t.bytes());
        let bits = 0n;
        let ts = 0;
        while (m.pos < m.len) {
          const [f, wt] = m.tag();
          if (f === 1) bits = BigInt(m.fixed64());
          else if (f === 2) ts = Number(m.int64());
          else m.skip(wt);
        }
        samples.push({ value: new Float64Array(new BigUint64Array([bits]).buffer)[0]!, bits, ts });
      } else t.skip(wireType);
    }
    for (const smp of samples) w.sample(names, values, count, smp.value, smp.ts, smp.bits === STALE_BITS);
  }
  return Buffer.from(w.view());
}

const STALE_BITS = 0x7ff0000000000002n;
