import fc from "fast-check";
import { compressSync } from "lz4-napi";
import { Packr } from "msgpackr";
import t from "tap";
import { BanyanError, Code } from "../../../src/core/errors.js";
import { Codec } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { DeltaDecoder } from "../../../src/series/delta-decoder.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { float64Bytes } from "../../../src/series/payload-builder.js";
import { exactDecimal } from "../../../src/series/decimal.js";
import { payloadToArray, type Payload } from "../../../src/series/payload.js";
import { SeriesType, seriesDef } from "../../../src/series/series-def.js";
import { decodePayload, encodePayload } from "../../../src/wire/payload-codec.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";

const packr = new Packr({ useRecords: false });
const limits = DEFAULT_WIRE_LIMITS;

function protocolError(t: Tap.Test, fn: () => unknown, pattern: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (err) {
    t.ok(err instanceof BanyanError && err.code === Code.Protocol, `${what}: a Protocol error`);
    t.match((err as Error).message, pattern, what);
  }
}
declare namespace Tap {
  type Test = typeof t;
}

const empty: Payload = { strings: [], defs: [], gone: [], ids: [], vals: [], rawIds: [], rawVals: new Uint8Array() };

t.test("payload codec - refuses truncated, corrupt and oversized payloads with a reason", async (t) => {
  const enc = new DeltaEncoder();
  for (let k = 0; k < 200; k++) enc.set(enc.define(seriesDef("m", { k: String(k) }, SeriesType.Gauge)), k * 1.5);
  const good = encodePayload(enc.encode()!.payload);
  t.equal(good.codec, Codec.MSGPACK_LZ4, "a 200-series keyframe is worth compressing");
  protocolError(t, () => decodePayload(Codec.MSGPACK_LZ4, good.bytes.subarray(0, 4), limits), /lz4 payload truncated/, "4-byte lz4");
  protocolError(t, () => decodePayload(Codec.MSGPACK_LZ4, good.bytes.subarray(0, good.bytes.length - 20), limits), /lz4 payload (corrupt|is)/, "cut lz4");
  const bomb = Buffer.from(good.bytes);
  bomb.writeUInt32LE(0x7fffffff, 0);
  protocolError(t, () => decodePayload(Codec.MSGPACK_LZ4, bomb, limits), /claims 2147483647 bytes, over the limit/, "lz4 bomb header");
  const zeros = compressSync(Buffer.alloc(limits.maxDecompressedBytes + 1));
  protocolError(t, () => decodePayload(Codec.MSGPACK_LZ4, zeros, limits), /over the limit/, "lz4 bomb that really expands");
  const liar = Buffer.from(good.bytes);
  liar.writeUInt32LE(liar.readUInt32LE(0) - 1, 0);
  protocolError(t, () => decodePayload(Codec.MSGPACK_LZ4, liar, limits), /lz4 payload/, "lz4 with a lying size");
  protocolError(t, () => decodePayload(Codec.MSGPACK, Buffer.from([0xc1, 0x00]), limits), /msgpack payload corrupt|payload/, "garbage msgpack");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack({ a: 1 }), limits), /not an 8- or 9-element array/, "a map");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack([2, [], [], [], [], [], [], new Uint8Array()]), limits), /unknown format 2/, "format 2");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, ids: [1], vals: [] })), limits), /1 ids but 0 values/, "ids without values");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, rawIds: [0], rawVals: new Uint8Array(4) })), limits), /raw bytes/, "short raw values");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, ids: [-1], vals: [1] })), limits), /ids\[0\] is not an integer/, "negative id");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, strings: ["x".repeat(5000)] })), limits), /5000 characters, over the limit 4096/, "huge label");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, strings: [7 as never] })), limits), /strings\[0\] is not a string/, "number as string");
  protocolError(t, () => decodePayload(99 as Codec, good.bytes, limits), /unknown codec 99/, "unknown codec");
  protocolError(t, () => decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, live: -3 })), limits), /live is not an integer/, "a negative series count");
  t.equal(decodePayload(Codec.MSGPACK, packr.pack(payloadToArray({ ...empty, live: 7 })), limits).live, 7, "a values frame's series count travels");
});

t.test("payload codec - random bytes never escape as anything but a Protocol error", async (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom(Codec.MSGPACK, Codec.MSGPACK_LZ4), (bytes, codec) => {
      try {
        decodePayload(codec, bytes, limits);
      } catch (err) {
        if (!(err instanceof BanyanError) || err.code !== Code.Protocol) throw err;
      }
    }),
    { numRuns: 3000, seed: 5 },
  );
});

t.test("decoder - a bad frame is refused whole and leaves the origin's state as it was", async (t) => {
  const enc = new DeltaEncoder();
  const dec = new DeltaDecoder(limits);
  const a = enc.define(seriesDef("temp_celsius", { sensor: "a" }, SeriesType.Gauge));
  enc.set(a, 40);
  const key = enc.encode()!;
  dec.apply(key.payload, "key");
  // A delta's string indices continue the table its keyframe began.
  const K = key.payload.strings.length;
  const label = (n: number): Payload => {
    const strings = ["bomb_total", ...Array.from({ length: 2 * n }, (_, k) => `l${String(k).padStart(4, "0")}`)];
    const defs = [1, K, SeriesType.Counter, K, K, n];
    for (let k = 0; k < n; k++) defs.push(K + 1 + 2 * k, K + 2 + 2 * k);
    return { ...empty, strings, defs, ids: [1], vals: [exactDecimal(1)] };
  };
  const bad: [string, Payload, RegExp][] = [
    ["value for an undefined series", { ...empty, ids: [5], vals: [exactDecimal(1)] }, /value for undefined series 5/],
    ["label bomb", label(33), /33 labels over the limit 32/],
    ["gone of an undefined series", { ...empty, gone: [9] }, /gone series 9 is not defined/],
    ["bad metric name", { ...empty, strings: ["1bad", ""], defs: [1, K, 0, K, K + 1, 0] }, /bad metric name "1bad"/],
    ["string out of range", { ...empty, strings: [], defs: [1, 40, 0, 40, 40, 0] }, /refers to string 40/],
    ["truncated definition", { ...empty, strings: ["ok"], defs: [1, K, 0] }, /truncated definition/],
    ["unknown type", { ...empty, strings: ["ok", ""], defs: [1, K, 9, K, K + 1, 0] }, /unknown type 9/],
    ["unsorted labels", { ...empty, strings: ["ok", "", "b", "a", "v"], defs: [1, K, 0, K, K + 1, 2, K + 2, K + 4, K + 3, K + 4] }, /labels not sorted/],
    ["bad label name", { ...empty, strings: ["ok", "", "__x", "v"], defs: [1, K, 0, K, K + 1, 1, K + 2, K + 3] }, /bad label name "__x"/],
    ["defined twice", { ...empty, strings: ["ok", ""], defs: [0, K, 0, K, K + 1, 0], ids: [0], vals: [exactDecimal(1)] }, /series 0 defined twice/],
    ["id over the limit", { ...empty, strings: ["ok", ""], defs: [200_000, K, 0, K, K + 1, 0] }, /series id 200000 over the limit/],
  ];
  for (const [what, payload, pattern] of bad) {
    protocolError(t, () => dec.apply(payload, "delta"), pattern, what);
    t.equal(dec.value(a), 40, `${what}: the held value is untouched`);
    t.equal(dec.size, 1, `${what}: the series set is untouched`);
  }
  protocolError(t, () => dec.apply({ ...empty, strings: ["x", ""], defs: [0, 0, 0, 0, 1, 0] }, "key"), /key frame carries 0 values for 1 series/, "keyframe missing a value");
  protocolError(t, () => dec.apply({ ...empty }, "values"), /values frame says the origin has \? series, 1 are known here/, "values frame without its count");
  protocolError(t, () => dec.apply({ ...empty, live: 2 }, "values"), /values frame says the origin has 2 series, 1 are known here/, "values frame whose count differs");
  protocolError(t, () => dec.apply({ ...empty, ids: [0, 0], vals: [exactDecimal(1), exactDecimal(2)] }, "values"), /value for undefined series 1/, "values frame with a value of a series not defined");
  t.equal(dec.value(a), 40);
  const raw = { ...empty, rawIds: [0], rawVals: float64Bytes([-0]) };
  dec.apply(raw, "delta");
  t.ok(Object.is(dec.value(a), -0), "a good frame after bad ones applies");
});
