import type { IncomingMessage, Server, ServerResponse } from "node:http";
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
}

export const DEFAULT_HTTP_BOUNDS: HttpBounds = Object.freeze({ maxConnections: 256, maxConcurrentRequests: 32, sendTimeoutMs: 60_000, idleTimeoutMs: 30_000 });

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
export function boundHttpServer(server: Server, bounds: HttpBounds): { admit(res: ServerResponse): { longLived(): void } | null; readonly inFlight: number } {
  server.maxConnections = bounds.maxConnections;
  server.keepAliveTimeout = Math.min(bounds.idleTimeoutMs, 65_000);
  server.headersTimeout = Math.min(bounds.idleTimeoutMs, 60_000);
  server.requestTimeout = bounds.sendTimeoutMs;
  // No I/O either way this long (a client that stopped reading, or an idle one): the socket goes.
  server.timeout = bounds.idleTimeoutMs;
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
