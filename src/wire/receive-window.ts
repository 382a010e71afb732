import type * as grpc from "@grpc/grpc-js";
import type { ServerHttp2Session } from "node:http2";

/**
 * HTTP/2 receive window of a child's connection (and of each of its streams): 4 MiB, where HTTP/2
 * and Node start at 64 KB. A grpc-js server has no option for it (grpc-node#3058), and with 64 KB a
 * sender waits for a WINDOW_UPDATE, one turn of this process's event loop, every 64 KB: a busy root
 * (working in 10 ms slices) took a relay's batch of keyframes in at 1-3 MB/s, the batches behind it
 * waited in the sender's queue, their acks came past the ack timeout, and the subtrees reconnected
 * and were marked down (at a 100 ms interval, 300-1,400 of 2,500 nodes at every start; none with it).
 * What a connection can hold unread is bounded by it: a link paused by the root (its input over
 * its bound) holds at most this much, and connections are bounded by the tree port.
 */
export const RECEIVE_WINDOW_BYTES = 4 * 1024 * 1024;

const widened = new WeakSet<ServerHttp2Session>();

/**
 * Widens the receive window of the connection a child's stream came on, once per connection.
 * Reaches the HTTP/2 session through grpc-js' call object (its `call.stream.session`, grpc-js 1.14);
 * false when that shape is not there (a grpc-js that changed it: the window stays at 64 KB, as before,
 * and the unit test of this function says so).
 */
export function widenReceiveWindow(call: grpc.ServerDuplexStream<Buffer, unknown>, bytes = RECEIVE_WINDOW_BYTES): boolean {
  const session = (call as unknown as { call?: { stream?: { session?: ServerHttp2Session } } }).call?.stream?.session;
  if (session === undefined || typeof session.setLocalWindowSize !== "function") return false;
  if (widened.has(session)) return true;
  widened.add(session);
  try {
    session.setLocalWindowSize(bytes);
    session.settings({ initialWindowSize: bytes });
    return true;
  } catch {
    // A session closing as we came: nothing to widen.
    return false;
  }
}
