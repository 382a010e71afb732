import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { z } from "zod";
import { overDefaults } from "./config-file.js";

/** Bounds on an HTTP server a peer or local user can reach (`web.*` in the root's config, `jobs.push*` in the agent's). */
export interface HttpBounds {
  /** Connections held at most; past it new ones are closed at once. */
  readonly maxConnections: number;
  /** Requests in flight at most; past it a 503 with Retry-After. */
  readonly maxConcurrentRequests: number;
  /** A response not sent whole this long after it started is cut (a client that reads slowly or not at all). */
  readonly sendTimeoutMs: number;
  /** A connection with no traffic either way this long is closed (also idle keep-alive ones). */
  readonly idleTimeoutMs: number;
  /** Connections one address may hold at once; past it its new ones are closed at once. */
  readonly maxConnectionsPerAddress: number;
  /** A request's headers must be whole this long after the connection opened (or its last response ended). */
  readonly headersTimeoutMs: number;
  /**
   * Connections still sending their first request's headers, at most: past it the oldest of them is
   * closed for the newcomer, so slow senders (slowloris) cannot hold every slot while a scraper that
   * sends its request at once always gets in.
   */
  readonly maxPendingConnections: number;
}

export const DEFAULT_HTTP_BOUNDS: HttpBounds = Object.freeze({ maxConnections: 256, maxConcurrentRequests: 32, sendTimeoutMs: 60_000, idleTimeoutMs: 30_000, maxConnectionsPerAddress: 32, headersTimeoutMs: 5000, maxPendingConnections: 64 });

const positiveInt = z.number().int().positive();

/** The config keys of HttpBounds (unset: the defaults). */
export const httpBoundsFields = {
  /** Connections held at most; past it new ones are closed at once (default 256 at a root, 64 at the push API). */
  maxConnections: positiveInt.optional(),
  /** Requests in flight at most; past it a 503 with Retry-After (default 32 at a root, 4 at the push API). */
  maxConcurrentRequests: positiveInt.optional(),
  /** A response not sent whole this long after it started is cut (a client that reads slowly or not at all); default 60,000. */
  sendTimeoutMs: positiveInt.optional(),
  /** A connection with no traffic either way this long is closed (also an idle keep-alive one); default 30,000. */
  idleTimeoutMs: positiveInt.optional(),
  /** Connections one address may hold at once (default 32 at a root; 64 at the push API, whose clients all come from 127.0.0.1). */
  maxConnectionsPerAddress: positiveInt.optional(),
  /** A request's headers must be whole this long after the connection opened or its last response ended; default 5,000. */
  headersTimeoutMs: positiveInt.optional(),
  /** Connections still sending their first request's headers, at most: past it the oldest is closed for the newcomer (default 64 at a root, 16 at the push API). */
  maxPendingConnections: positiveInt.optional(),
};

/** The bounds a config sets, over `defaults` (the root's, or the push API's smaller ones). */
export function resolveHttpBounds(partial: object, defaults: HttpBounds = DEFAULT_HTTP_BOUNDS): HttpBounds {
  return overDefaults(defaults, partial);
}

/**
 * Applies the bounds to a Node HTTP server: connection cap, idle and header timeouts, and returns
 * the admission of one request (null past the cap: the caller answers 503) whose `done` must be
 * called when the response ends; the response is cut when not sent within the send timeout (a
 * scraper that never reads held a whole page in memory, with no end). Cost: one timer per request.
 */
export function boundHttpServer(server: Server, bounds: HttpBounds, refused: (reason: ConnectionRefusal) => void = () => undefined): { admit(res: ServerResponse): { longLived(): void } | null; readonly inFlight: number } {
  server.maxConnections = bounds.maxConnections;
  server.keepAliveTimeout = Math.min(bounds.idleTimeoutMs, 65_000);
  server.headersTimeout = Math.min(bounds.headersTimeoutMs, bounds.idleTimeoutMs, 60_000);
  server.requestTimeout = bounds.sendTimeoutMs;
  // No I/O either way this long (a client that stopped reading, or an idle one): the socket goes.
  server.timeout = bounds.idleTimeoutMs;
  guardConnections(server, bounds, refused);
  let inFlight = 0;
  return {
    admit(res: ServerResponse) {
      if (inFlight >= bounds.maxConcurrentRequests) return null;
      inFlight++;
      let counted = true;
      const timer = setTimeout(() => res.destroy(), bounds.sendTimeoutMs);
      timer.unref();
      const release = (): void => {
        clearTimeout(timer);
        if (counted) inFlight--;
        counted = false;
      };
      res.once("close", release);
      return {
        /** A stream (server-sent events) bounded elsewhere: no send timeout, not a request in flight. */
        longLived: release,
      };
    },
    get inFlight() {
      return inFlight;
    },
  };
}

/** A request's body, or null once it passes `maxBytes` (the rest is not read: answer 413 and let the connection go). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > maxBytes) return null;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export type ConnectionRefusal = "per_address" | "headers_timeout" | "pending_evicted";

/**
 * What a slow client (slowloris) could hold, bounded: per address `maxConnectionsPerAddress`
 * connections; a new connection's first request headers due within `headersTimeoutMs` (Node's own
 * headersTimeout, which later requests on a kept-alive connection get, is checked only every 30 s);
 * and at most `maxPendingConnections` connections that have not sent their first request, the oldest
 * of them closed for a newcomer. State: one entry per open connection (at most `maxConnections`).
 */
function guardConnections(server: Server, bounds: HttpBounds, refused: (reason: ConnectionRefusal) => void): void {
  const perAddress = new Map<string, number>();
  /** Connections that have not sent their first request, oldest first, by remote address and port (a TLS socket's are its TCP socket's). */
  const pending = new Map<string, { socket: Socket; timer: NodeJS.Timeout }>();
  const forget = (key: string): void => {
    const p = pending.get(key);
    if (p === undefined) return;
    clearTimeout(p.timer);
    pending.delete(key);
  };
  server.on("connection", (socket: Socket) => {
    const address = socket.remoteAddress ?? "";
    const n = perAddress.get(address) ?? 0;
    if (n >= bounds.maxConnectionsPerAddress) {
      refused("per_address");
      socket.destroy();
      return;
    }
    perAddress.set(address, n + 1);
    const key = `${address}|${socket.remotePort ?? ""}`;
    if (pending.size >= bounds.maxPendingConnections) {
      const [oldestKey, oldest] = pending.entries().next().value!;
      forget(oldestKey);
      refused("pending_evicted");
      oldest.socket.destroy();
    }
    const timer = setTimeout(() => {
      forget(key);
      refused("headers_timeout");
      socket.destroy();
    }, bounds.headersTimeoutMs);
    timer.unref();
    pending.set(key, { socket, timer });
    socket.once("close", () => {
      forget(key);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left <= 0) perAddress.delete(address);
      else perAddress.set(address, left);
    });
  });
  // Its first request's headers are whole: the connection is no longer pending.
  server.prependListener("request", (req: IncomingMessage) => forget(`${req.socket.remoteAddress ?? ""}|${req.socket.remotePort ?? ""}`));
}
