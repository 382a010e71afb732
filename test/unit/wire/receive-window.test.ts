import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import t from "tap";
import { UpSchema } from "../../../src/gen/banyan/v1/uplink_pb.js";
import { RECEIVE_WINDOW_BYTES, widenReceiveWindow } from "../../../src/wire/receive-window.js";
import { uplinkServiceDefinition } from "../../../src/wire/uplink-grpc.js";

t.test("receive window - a child's connection is widened past HTTP/2's 64 KB, once a connection", async (t) => {
  const seen: { widened: boolean; window: number }[] = [];
  const server = new grpc.Server();
  server.addService(uplinkServiceDefinition, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, unknown>) => {
      const widened = widenReceiveWindow(call);
      // What the window is now, read the way the function reached it (grpc-js' call object).
      const session = (call as unknown as { call: { stream: { session: { state: { localWindowSize?: number } } } } }).call.stream.session;
      seen.push({ widened, window: session.state.localWindowSize ?? -1 });
      call.on("data", () => undefined);
      call.on("end", () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  const Client = grpc.makeGenericClientConstructor(uplinkServiceDefinition, "Uplink");
  const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const open = (): grpc.ClientDuplexStream<unknown, Buffer> => {
    const call = (client as unknown as { Stream(): grpc.ClientDuplexStream<unknown, Buffer> }).Stream();
    call.on("error", () => undefined);
    call.write(create(UpSchema, { msg: { case: "hello", value: { node: "n1", tree: 0, epoch: 1n } } }));
    return call;
  };
  const a = open();
  const b = open();
  while (seen.length < 2) await new Promise((r) => setTimeout(r, 10));
  a.end();
  b.end();
  t.equal(seen[0]!.widened, true, "the first stream of a connection widens it");
  t.equal(seen[0]!.window, RECEIVE_WINDOW_BYTES, `the connection's receive window is ${RECEIVE_WINDOW_BYTES} bytes`);
  t.equal(seen[1]!.widened, true, "a second stream on it finds it widened");
  t.equal(seen[1]!.window, RECEIVE_WINDOW_BYTES, "and the window as it was");
});

t.test("receive window - a call without grpc-js' shape is left alone", async (t) => {
  t.equal(widenReceiveWindow({} as unknown as grpc.ServerDuplexStream<Buffer, unknown>), false);
});
