import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { BanyanError, Code } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { WebAuth, type WebConfig } from "../../../core/web-config.js";
import { WatchRequestSchema, WatchUpdateSchema, WatchUpdate_Kind, type WatchRequest, type WatchUpdate } from "../../../gen/banyan/v1/watch_pb.js";
import { PEER_READ, parseHostPort, shutdownServer } from "../../../wire/uplink-grpc.js";
import type { WatchHub } from "./watch-hub.js";
import { watchSpecOf } from "./watch-spec.js";
import type { WatchMessage, WatchSink } from "./watcher.js";

export const WATCH_PATH = "/banyan.v1.Watch/Watch";
const asBuffer = (u8: Uint8Array): Buffer => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);

/** `banyan.v1.Watch` for grpc-js, from the generated messages (a malformed request is an INVALID_ARGUMENT, not an exception in grpc-js). */
export const watchServiceDefinition = {
  Watch: {
    path: WATCH_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: (m: WatchRequest): Buffer => asBuffer(toBinary(WatchRequestSchema, m)),
    requestDeserialize: (b: Buffer): Buffer => b,
    responseSerialize: (m: WatchUpdate): Buffer => asBuffer(toBinary(WatchUpdateSchema, m)),
    responseDeserialize: (b: Buffer): WatchUpdate => fromBinary(WatchUpdateSchema, b, PEER_READ),
    originalName: "watch",
  },
} as const satisfies ServiceDefinition;

/** A watcher's message as the proto has it. */
export function watchUpdateOf(m: WatchMessage): WatchUpdate {
  return create(WatchUpdateSchema, {
    kind: m.kind === "snapshot" ? WatchUpdate_Kind.SNAPSHOT : WatchUpdate_Kind.UPDATE,
    timeMs: BigInt(m.timeMs),
    samples: m.samples.map((s) => ({ labels: s.labels, value: s.value, timeMs: BigInt(Math.round(s.timeMs)), gone: s.gone === true })),
  });
}

/**
 * The gRPC form of the watch API on its own port (`watch.grpcListen`): the tree port's gate wants a
 * Hello in seconds and is for the trees' certificates, a scheduler is neither. It takes the same web
 * config as the HTTP side: its TLS certificate (client certificates as tls_server_config says) and
 * its basic auth users (the `authorization` metadata).
 */
export class WatchGrpcServer {
  private readonly server = new grpc.Server({ "grpc.max_concurrent_streams": 256 });
  private auth: WebAuth;

  constructor(
    private readonly hub: WatchHub,
    private readonly defaultIntervalMs: number,
    private readonly web: WebConfig | null,
    private readonly log: Logger,
  ) {
    this.auth = new WebAuth(web);
    this.server.addService(watchServiceDefinition, { Watch: (call: grpc.ServerWritableStream<Buffer, WatchUpdate>) => void this.onWatch(call) });
  }

  /** A reloaded web config's users (its TLS material is read at start). */
  setWebConfig(web: WebConfig | null): void {
    this.auth = new WebAuth(web);
  }

  async listen(address: string): Promise<number> {
    const { host, port } = parseHostPort(address, "watch.grpcListen");
    const tls = this.web?.tls ?? null;
    const creds =
      tls === null
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(tls.ca !== undefined ? Buffer.from(tls.ca as Buffer) : null, [{ cert_chain: Buffer.from(tls.cert as Buffer), private_key: Buffer.from(tls.key as Buffer) }], tls.clientAuth === "RequireAndVerifyClientCert");
    return new Promise((resolve, reject) =>
      this.server.bindAsync(`${host}:${port}`, creds, (err, bound) => (err !== null ? reject(new BanyanError(Code.InvalidConfig, `watch.grpcListen: cannot listen on ${address}: ${err.message}`, { cause: err })) : resolve(bound))),
    );
  }

  stop(): Promise<void> {
    return shutdownServer(this.server);
  }

  private async onWatch(call: grpc.ServerWritableStream<Buffer, WatchUpdate>): Promise<void> {
    const fail = (code: grpc.status, details: string): void => {
      call.emit("error", { code, details });
    };
    const header = call.metadata.get("authorization")[0];
    if (!(await this.auth.basicAuthorized(typeof header === "string" ? header : undefined))) return fail(grpc.status.UNAUTHENTICATED, "basic auth required (the root's web config)");
    let req: WatchRequest;
    try {
      req = fromBinary(WatchRequestSchema, call.request, PEER_READ);
    } catch (err) {
      return fail(grpc.status.INVALID_ARGUMENT, `malformed WatchRequest: ${(err as Error).message}`);
    }
    const spec = watchSpecOf({ match: req.match, agg: req.agg, by: req.by, ...(req.intervalMs > 0 ? { intervalMs: req.intervalMs } : {}) }, this.defaultIntervalMs);
    if (typeof spec === "string") {
      this.hub.refusedRequest("bad_request");
      return fail(grpc.status.INVALID_ARGUMENT, spec);
    }
    let pending = 0;
    let ended = false;
    const sink: WatchSink = {
      send: (m) => {
        if (ended) return;
        const u = watchUpdateOf(m);
        const size = 16 + m.samples.length * 64;
        pending += size;
        call.write(u, () => {
          pending -= size;
        });
      },
      pendingBytes: () => pending,
      close: (reason) => {
        if (ended) return;
        ended = true;
        fail(grpc.status.RESOURCE_EXHAUSTED, reason);
      },
    };
    const w = this.hub.open(spec, sink);
    if (typeof w === "string") return fail(grpc.status.RESOURCE_EXHAUSTED, w);
    call.on("cancelled", () => {
      ended = true;
      this.hub.close(w);
    });
    call.on("error", () => this.hub.close(w));
    call.on("close", () => this.hub.close(w));
    this.log.debug({ match: req.match.slice(0, 4), agg: req.agg }, "watch opened (gRPC)");
  }
}
