import { create, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import t from "tap";
import { parseGroupingPath } from "../../../src/agent/push-request.js";
import { BanyanError } from "../../../src/core/errors.js";
import { Codec, FrameKind, FrameSchema, UpSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { DeltaDecoder } from "../../../src/series/delta-decoder.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { parseDelimitedFamilies } from "../../../src/series/protobuf-exposition.js";
import { SeriesType, seriesDef } from "../../../src/series/series-def.js";
import { frameProblem } from "../../../src/wire/frame-envelope.js";
import { decodePayload, encodePayload } from "../../../src/wire/payload-codec.js";
import { decodeUp } from "../../../src/wire/uplink-grpc.js";
import { DEFAULT_WIRE_LIMITS } from "../../../src/wire/wire-limits.js";

/** A decoder may refuse what a peer sends, with a BanyanError; anything else thrown would be a crash. */
function refusesCleanly(f: () => unknown): boolean {
  try {
    f();
    return true;
  } catch (err) {
    if (err instanceof BanyanError) return true;
    throw err;
  }
}

/** Valid bytes of each layer, to mutate. */
function sample(): { up: Uint8Array; payload: { codec: Codec; bytes: Uint8Array } } {
  const enc = new DeltaEncoder();
  for (let k = 0; k < 20; k++) enc.set(enc.define(seriesDef(`m_${k % 3}`, { k: String(k), path: "/scratch/ü" }, k % 2 === 0 ? SeriesType.Gauge : SeriesType.Counter, { help: "Help." })), k * 1.5);
  const f = enc.encode()!;
  const w = encodePayload(f.payload);
  const frame = create(FrameSchema, { origin: "n1", epoch: 1n, seq: 1n, timeMs: 1n, kind: FrameKind.KEY, codec: w.codec, payload: w.bytes });
  const up = toBinary(UpSchema, create(UpSchema, { msg: { case: "batch", value: { linkSeq: 1n, frames: [frame], alive: [] } } }));
  return { up, payload: { codec: w.codec, bytes: w.bytes } };
}

/** Flips, overwrites, cuts or extends bytes of `base`. */
const mutated = (base: Uint8Array) =>
  fc
    .array(fc.oneof(fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }), fc.record({ at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }), fc.record({ cut: fc.nat() }), fc.record({ tail: fc.uint8Array({ maxLength: 16 }) })), { minLength: 1, maxLength: 8 })
    .map((edits) => {
      let b = Uint8Array.from(base);
      for (const e of edits) {
        if ("bit" in e) b[e.at % b.length] ^= 1 << e.bit;
        else if ("byte" in e) b[e.at % b.length] = e.byte;
        else if ("cut" in e) b = b.subarray(0, e.cut % (b.length + 1));
        else b = Uint8Array.from([...b, ...e.tail]);
      }
      return b;
    });

t.test("fuzz - the Up message decoder refuses any bytes cleanly, and every frame it passes is checked by the envelope", async () => {
  const { up } = sample();
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated(up)), (bytes) => {
      let msg;
      try {
        msg = decodeUp(Buffer.from(bytes));
      } catch (err) {
        if (err instanceof BanyanError) return true;
        throw err;
      }
      if (msg.msg.case === "batch") for (const f of msg.msg.value.frames) frameProblem(f, DEFAULT_WIRE_LIMITS); // never throws
      return true;
    }),
    { numRuns: 3000 },
  );
});

t.test("fuzz - the payload decoder (lz4, msgpack, shape) and the delta decoder refuse any bytes cleanly and keep their state whole", async (t) => {
  const { payload } = sample();
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated(payload.bytes)), fc.constantFrom(Codec.MSGPACK, Codec.MSGPACK_LZ4, payload.codec), fc.constantFrom("key", "values", "delta"), (bytes, codec, mode) => {
      const dec = new DeltaDecoder();
      // A good keyframe first, so a bad frame after it must leave that state as it was.
      dec.apply(decodePayload(payload.codec, payload.bytes, DEFAULT_WIRE_LIMITS), "key");
      const before = dec.size;
      return refusesCleanly(() => {
        try {
          dec.apply(decodePayload(codec, bytes, DEFAULT_WIRE_LIMITS), mode as "key" | "values" | "delta");
        } catch (err) {
          if (dec.size !== before) throw new Error(`a refused frame changed the state: ${before} → ${dec.size} series`);
          throw err;
        }
      });
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

t.test("fuzz - the push API's parsers (delimited protobuf bodies, grouping paths) never throw", async () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      const r = parseDelimitedFamilies(bytes);
      return Array.isArray(r.samples) && Array.isArray(r.errors);
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom("metrics", "job", "job@base64", "%", "%zz", "a@base64", "=", "..", "")), { maxLength: 8 }), (parts) => {
      const r = parseGroupingPath("/" + parts.join("/"));
      return "grouping" in r || (r.status >= 400 && r.status < 500);
    }),
    { numRuns: 3000 },
  );
});
