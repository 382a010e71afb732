import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { ServiceDefinition } from "@grpc/grpc-js";
import type { Logger } from "../core/logger.js";
import { BanyanError, Code } from "../core/errors.js";
import { DownSchema, UpSchema, type Down, type Up } from "../gen/banyan/v1/uplink_pb.js";

/**
 * The grpc-js service definition of `banyan.v1.Uplink`, built by hand from the generated messages.
 * Both ends receive raw bytes and decode them inside their handlers, where a malformed message is a
 * counted, logged protocol error on that one link, never an exception inside grpc-js.
 */
export const UPLINK_STREAM_PATH = "/banyan.v1.Uplink/Stream";

// toBinary returns a Uint8Array; grpc-js needs a Buffer ("13 INTERNAL: Failed to write message"),
// so wrap the same memory instead of copying it.
const asBuffer = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
const raw = (b: Buffer): Buffer => b;

export const uplinkServiceDefinition = {
  Stream: {
    path: UPLINK_STREAM_PATH,
    requestStream: true,
    responseStream: true,
    requestSerialize: (m: Up): Buffer => asBuffer(toBinary(UpSchema, m)),
    requestDeserialize: raw,
    responseSerialize: (m: Down): Buffer => asBuffer(toBinary(DownSchema, m)),
    responseDeserialize: raw,
    originalName: "stream",
  },
} as const satisfies ServiceDefinition;

/**
 * A peer's fields this protocol does not have are dropped as they are read: kept, a frame's would
 * ride along in a relay's queue uncounted by its byte bounds (which count payload and origin) and be
 * written up the tree again, so a child could attach 50 KB of them to a 10-byte frame.
 */
export const PEER_READ = Object.freeze({ readUnknownFields: false });

export function decodeUp(bytes: Buffer): Up {
  try {
    return fromBinary(UpSchema, bytes, PEER_READ);
  } catch (err) {
    throw new BanyanError(Code.Protocol, `malformed Up message: ${(err as Error).message}`, { cause: err });
  }
}

export function decodeDown(bytes: Buffer): Down {
  try {
    return fromBinary(DownSchema, bytes, PEER_READ);
  } catch (err) {
    throw new BanyanError(Code.Protocol, `malformed Down message: ${(err as Error).message}`, { cause: err });
  }
}

/** Closes a grpc-js server: its open calls get `graceMs` to end, then it is forced shut. */
export function shutdownServer(server: grpc.Server, graceMs = 1000): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    timer.unref();
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Parses "host:port" (IPv6 as "[::1]:port"); throws an InvalidConfig error naming `where`. */
export function parseHostPort(addr: string, where: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : -1;
  if (!m || port > 65535) throw new BanyanError(Code.InvalidConfig, `${where}: got ${JSON.stringify(addr)}, expected host:port`);
  return { host: m[1]!, port };
}

/**
 * grpc-js writes its own errors to stderr ("E No address added out of total 1 resolved", before
 * Banyan's own port-in-use message). Banyan reports what it acts on itself, so grpc-js' lines go to
 * the daemon's log at debug level, once per process.
 */
export function routeGrpcLogs(log: Logger): void {
  const line =
    (level: string) =>
    (...args: unknown[]): void =>
      log.debug({ grpc: level }, args.map(String).join(" "));
  grpc.setLogger({ error: line("error"), info: line("info"), debug: line("debug") });
}
