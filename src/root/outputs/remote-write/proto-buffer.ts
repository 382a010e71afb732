/**
 * A growable buffer that protobuf fields are written into directly (the remote_write messages are
 * small and fixed: sizes are computed before each message, so nothing is built twice).
 */
export class ProtoBuffer {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  view(): Buffer {
    return this.buf.subarray(0, this.pos);
  }

  tag(field: number, wireType: number): void {
    this.buf[this.pos++] = (field << 3) | wireType;
  }

  /** A non-negative integer below 2^53 (lengths, refs, and timestamps after 1970). */
  varint(v: number): void {
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  str(field: number, s: string): void {
    const n = utf8Len(s);
    this.tag(field, 2);
    this.varint(n);
    this.pos += this.buf.write(s, this.pos, n, "utf8");
  }

  /** A double; the staleness marker's NaN (0x7ff0000000000002) bit for bit when `stale`. */
  double(value: number, stale: boolean): void {
    if (stale) {
      this.buf.writeUInt32LE(2, this.pos);
      this.buf.writeUInt32LE(0x7ff00000, this.pos + 4);
    } else this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  ensure(extra: number): void {
    if (this.pos + extra <= this.buf.length) return;
    let n = this.buf.length * 2;
    while (n < this.pos + extra) n *= 2;
    const grown = Buffer.allocUnsafe(n);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

export const utf8Len = (s: string): number => Buffer.byteLength(s, "utf8");

export function varintLen(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

/** A length-delimited field of `len` bytes with a one-byte tag. */
export const fieldLen = (len: number): number => 1 + varintLen(len) + len;

/** A Sample message: double value = 1, int64 timestamp = 2. */
export const sampleLen = (timestampMs: number): number => 1 + 8 + 1 + varintLen(timestampMs);

export function writeSample(b: ProtoBuffer, field: number, value: number, timestampMs: number, stale: boolean): void {
  b.tag(field, 2);
  b.varint(sampleLen(timestampMs));
  b.tag(1, 1);
  b.double(value, stale);
  b.tag(2, 0);
  b.varint(timestampMs);
}
