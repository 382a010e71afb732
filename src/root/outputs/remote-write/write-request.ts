import { ProtoBuffer, fieldLen, sampleLen, utf8Len, varintLen, writeSample } from "./proto-buffer.js";

/**
 * Prometheus remote_write 1.0's WriteRequest (prompb), written straight into one buffer:
 *
 *   WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata metadata = 3; }
 *   TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
 *   Label        { string name = 1; string value = 2; }
 *   Sample       { double value = 1; int64 timestamp = 2; }
 *   MetricMetadata { MetricType type = 1; string metric_family_name = 2; string help = 4; string unit = 5; }
 *
 * Sizes are computed before each message is written (a length prefix needs them), so a sample costs
 * byte writes only: no message object, no intermediate buffer (the generic protobuf writer forks a
 * buffer per nested message: three per sample).
 */
/** What a request is written with: 1.0's WriteRequestWriter or 2.0's WriteRequestV2Writer. */
export interface RequestWriter {
  readonly series: number;
  reset(): void;
  /** One sample of one series; `type` (prompb MetricType) and `help` travel with it in 2.0, apart in 1.0. */
  sample(names: readonly string[], values: readonly string[], count: number, value: number, timestampMs: number, stale: boolean, type: number, help: string): void;
  view(): Buffer;
}

export class WriteRequestWriter implements RequestWriter {
  private readonly b: ProtoBuffer;
  series = 0;

  constructor(initialBytes = 64 * 1024) {
    this.b = new ProtoBuffer(initialBytes);
  }

  get bytes(): number {
    return this.b.pos;
  }

  /** Starts a fresh request, keeping the buffer. */
  reset(): void {
    this.b.pos = 0;
    this.series = 0;
  }

  /** The request so far (a view of the writer's buffer: copy or send before the next reset). */
  view(): Buffer {
    return this.b.view();
  }

  /**
   * One TimeSeries of one sample: the first `count` of `names`/`values`, sorted by name with unique
   * names (see mergeLabels). Timestamps before 1970 are written as 0.
   */
  sample(names: readonly string[], values: readonly string[], count: number, value: number, timestampMs: number, stale = false): void {
    // (type and help travel in metadata requests in 1.0: see metadata())
    if (!(timestampMs >= 0)) timestampMs = 0;
    let labelsLen = 0;
    for (let k = 0; k < count; k++) labelsLen += fieldLen(labelLen(names[k]!, values[k]!));
    const seriesLen = labelsLen + fieldLen(sampleLen(timestampMs));
    const b = this.b;
    b.ensure(fieldLen(seriesLen));
    b.tag(1, 2);
    b.varint(seriesLen);
    for (let k = 0; k < count; k++) {
      b.tag(1, 2);
      b.varint(labelLen(names[k]!, values[k]!));
      b.str(1, names[k]!);
      b.str(2, values[k]!);
    }
    writeSample(b, 2, value, timestampMs, stale);
    this.series++;
  }

  /** One MetricMetadata (type as prompb's MetricType: 1 counter, 2 gauge, 3 histogram, 5 summary, 0 unknown). */
  metadata(family: string, type: number, help: string, unit = ""): void {
    const len = 1 + varintLen(type) + fieldLen(utf8Len(family)) + (help === "" ? 0 : fieldLen(utf8Len(help))) + (unit === "" ? 0 : fieldLen(utf8Len(unit)));
    const b = this.b;
    b.ensure(fieldLen(len));
    b.tag(3, 2);
    b.varint(len);
    b.tag(1, 0);
    b.varint(type);
    b.str(2, family);
    if (help !== "") b.str(4, help);
    if (unit !== "") b.str(5, unit);
  }
}

const labelLen = (name: string, value: string): number => fieldLen(utf8Len(name)) + fieldLen(utf8Len(value));
