import { compressSync, uncompressSync } from "lz4-napi";
import { Packr, Unpackr } from "msgpackr";
import { BanyanError, Code } from "../core/errors.js";
import { Codec } from "../gen/banyan/v1/uplink_pb.js";
import { payloadFromArray, payloadToArray, type Payload } from "../series/payload.js";
import type { WireLimits } from "./wire-limits.js";

// Plain msgpack both ways: no records or structures, so a peer's bytes cannot define types for us.
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

/** Below this a payload is sent as plain msgpack: lz4's 4-byte header and literals rarely pay off. */
export const LZ4_MIN_BYTES = 128;

/** Encodes a frame payload: msgpack, lz4-compressed when that is smaller. */
export function encodePayload(p: Payload): { codec: Codec; bytes: Uint8Array } {
  const plain = packr.pack(payloadToArray(p));
  if (plain.length >= LZ4_MIN_BYTES) {
    // compressSync: the async call costs ~60 µs of overhead per small buffer (TOOLCHAIN.md).
    const packed = compressSync(plain);
    if (packed.length < plain.length) return { codec: Codec.MSGPACK_LZ4, bytes: packed };
  }
  return { codec: Codec.MSGPACK, bytes: plain };
}

/** Decodes a payload from a peer; every failure is a Protocol BanyanError with the reason. */
export function decodePayload(codec: Codec, bytes: Uint8Array, limits: WireLimits): Payload {
  let plain: Uint8Array;
  if (codec === Codec.MSGPACK_LZ4) {
    // lz4-napi writes the decompressed size as a 4-byte little-endian prefix; check it before
    // decompressing so a forged size can never make us allocate past the limit.
    if (bytes.length < 5) throw new BanyanError(Code.Protocol, "lz4 payload truncated");
    const size = bytes[0]! | (bytes[1]! << 8) | (bytes[2]! << 16) | (bytes[3]! << 24);
    if (size < 0 || size > limits.maxDecompressedBytes) {
      throw new BanyanError(Code.Protocol, `lz4 payload claims ${size >>> 0} bytes, over the limit ${limits.maxDecompressedBytes}`);
    }
    try {
      plain = uncompressSync(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      throw new BanyanError(Code.Protocol, `lz4 payload corrupt: ${(err as Error).message}`, { cause: err });
    }
    if (plain.length !== size) throw new BanyanError(Code.Protocol, `lz4 payload is ${plain.length} bytes, its header says ${size}`);
  } else if (codec === Codec.MSGPACK) {
    if (bytes.length > limits.maxDecompressedBytes) throw new BanyanError(Code.Protocol, `payload of ${bytes.length} bytes over the limit`);
    plain = bytes;
  } else {
    throw new BanyanError(Code.Protocol, `unknown codec ${codec}`);
  }
  let raw: unknown;
  try {
    raw = unpackr.unpack(plain);
  } catch (err) {
    throw new BanyanError(Code.Protocol, `msgpack payload corrupt: ${(err as Error).message}`, { cause: err });
  }
  return payloadFromArray(raw, limits);
}
