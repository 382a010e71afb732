import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { VERSION } from "../core/version.js";
import { UpSchema, type Up } from "../gen/banyan/v1/uplink_pb.js";
import type { TreeTls } from "./tree-tls.js";
import { decodeDown, uplinkServiceDefinition } from "./uplink-grpc.js";

/** Asks a would-be parent whether its process answers. An interface so healing is testable without a socket. */
export interface ParentProbe {
  probe(address: string, timeoutMs: number): Promise<boolean>;
  close(): void;
}

const Client = grpc.makeGenericClientConstructor(uplinkServiceDefinition, "Uplink");

/**
 * Opens a stream, sends Hello{probe}, and waits for the Ack. A parent stopped with SIGSTOP still
 * accepts TCP connections in its kernel, so only an answer proves it healthy. One client per
 * address is kept between probes that are answered.
 */
export class GrpcParentProbe implements ParentProbe {
  private client: grpc.Client | null = null;
  private address = "";

  constructor(
    private readonly node: string,
    private readonly tree: number,
    private readonly tls?: TreeTls,
  ) {}

  probe(address: string, timeoutMs: number): Promise<boolean> {
    if (this.client === null || this.address !== address) {
      this.client?.close();
      const secure = this.tls?.channel(address);
      this.client = new Client(address, secure?.credentials ?? grpc.credentials.createInsecure(), { ...secure?.options, "grpc.max_reconnect_backoff_ms": 1000, "grpc.use_local_subchannel_pool": 1 });
      this.address = address;
    }
    const call = (this.client as unknown as { Stream(): grpc.ClientDuplexStream<Up, Buffer> }).Stream();
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        call.removeAllListeners();
        call.on("error", () => undefined);
        call.cancel();
        // No answer: the next probe opens a new connection. The kept one may be a TCP connection
        // from before the parent's host went silent, which after a long outage resumes only at
        // TCP's next retransmission (tens of seconds): children took 23 s to move back after a
        // 60 s outage, where healAfterMs is 10 s.
        if (!ok) this.close();
        resolve(ok);
      };
      const timer = setTimeout(() => finish(false), timeoutMs);
      timer.unref();
      call.on("data", (b: Buffer) => {
        try {
          finish(decodeDown(b).msg.case === "ack");
        } catch {
          finish(false);
        }
      });
      call.on("error", () => finish(false));
      call.on("end", () => finish(false));
      call.write(create(UpSchema, { msg: { case: "hello", value: { node: this.node, tree: this.tree, epoch: 0n, version: VERSION, probe: true } } }));
    });
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }
}
