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
export class WriteRequestWriter {
  private buf: Buffer;
  private pos = 0;
  series = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get bytes(): number {
    return this.pos;
  }

  /** Starts a fresh request, keeping the buffer. */
  reset(): void {
    this.pos = 0;
    this.series = 0;
  }

  /** The request so far (a view of the writer's buffer: copy or send before the next reset). */
  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  /**
   * One TimeSeries of one sample: the first `count` of `names`/`values`, sorted by name with unique
   * names (see mergeLabels). Timestamps before 1970 are written as 0.
   */
  sample(names: readonly string[], values: readonly string[], count: number, value: number, timestampMs: number, stale = false): void {
    if (!(timestampMs >= 0)) timestampMs = 0;
    let labelsLen = 0;
    for (let k = 0; k < count; k++) labelsLen += fieldLen(labelLen(names[k]!, values[k]!));
    const sampleLen = 1 + 8 + 1 + varintLen(timestampMs);
    const seriesLen = labelsLen + fieldLen(sampleLen);
    this.ensure(fieldLen(seriesLen));
    this.tag(1, 2);
    this.varint(seriesLen);
    for (let k = 0; k < count; k++) {
      this.tag(1, 2);
      this.varint(labelLen(names[k]!, values[k]!));
      this.str(1, names[k]!);
      this.str(2, values[k]!);
    }
    this.tag(2, 2);
    this.varint(sampleLen);
    this.tag(1, 1);
    // The staleness marker is one particular NaN (0x7ff0000000000002), written bit for bit.
    if (stale) {
      this.buf.writeUInt32LE(2, this.pos);
      this.buf.writeUInt32LE(0x7ff00000, this.pos + 4);
    } else this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
    this.tag(2, 0);
    this.varint(timestampMs);
    this.series++;
  }

  /** One MetricMetadata (type as prompb's MetricType: 1 counter, 2 gauge, 3 histogram, 5 summary, 0 unknown). */
  metadata(family: string, type: number, help: string, unit = ""): void {
    const len = 1 + varintLen(type) + fieldLen(utf8Len(family)) + (help === "" ? 0 : fieldLen(utf8Len(help))) + (unit === "" ? 0 : fieldLen(utf8Len(unit)));
    this.ensure(fieldLen(len));
    this.tag(3, 2);
    this.varint(len);
    this.tag(1, 0);
    this.varint(type);
    this.str(2, family);
    if (help !== "") this.str(4, help);
    if (unit !== "") this.str(5, unit);
  }

  private str(field: number, s: string): void {
    const n = utf8Len(s);
    this.tag(field, 2);
    this.varint(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }

  private tag(field: number, wireType: number): void {
    this.buf[this.pos++] = (field << 3) | wireType;
  }

  /** A non-negative integer below 2^53 (lengths, and timestamps after 1970). */
  private varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  private ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let n = this.buf.length * 2;
    while (n < this.pos + extra) n *= 2;
    const grown = Buffer.allocUnsafe(n);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

const utf8Len = (s: string): number => Buffer.byteLength(s, "utf8");

function varintLen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** A length-delimited field of `len` bytes with a one-byte tag. */
const fieldLen = (len: number): number => 1 + varintLen(len) + len;

const labelLen = (name: string, value: string): number => fieldLen(utf8Len(name)) + fieldLen(utf8Len(value));
