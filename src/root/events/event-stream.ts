import type { IncomingMessage, ServerResponse } from "node:http";
import { type EventLog, eventFilterOf, matches } from "./event-log.js";

/** Streams open at most; past it a 503 (each holds a socket and a listener). */
const MAX_STREAMS = 64;
/** A stream whose reader lets this much pile up unsent is closed (it would hold the root's memory). */
const MAX_UNSENT_BYTES = 1024 * 1024;

/**
 * `GET /api/v1/events/stream`: the root's events as they happen, as server-sent events (`event:
 * <type>`, `id: <event id>`, `data: <JSON>`), with the same filters as /api/v1/events; a comment
 * every 15 s keeps proxies from closing it. `Last-Event-ID` or `since` replays the recent ones first.
 */
export function eventStream(events: EventLog): (req: IncomingMessage, res: ServerResponse, url: URL) => void {
  let open = 0;
  return (req, res, url) => {
    const filter = eventFilterOf(url.searchParams);
    if (typeof filter === "string") {
      res.writeHead(400, { "content-type": "text/plain" }).end(filter + "\n");
      return;
    }
    if (open >= MAX_STREAMS) {
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "10" }).end(`${MAX_STREAMS} event streams are open, the most a root serves\n`);
      return;
    }
    open++;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    res.flushHeaders();
    const send = (e: Parameters<Parameters<EventLog["subscribe"]>[0]>[0]): void => {
      if (!matches(e, filter)) return;
      if (res.writableLength > MAX_UNSENT_BYTES) {
        res.destroy();
        return;
      }
      res.write(`event: ${e.type}\nid: ${e.id}\ndata: ${JSON.stringify(e)}\n\n`);
    };
    const last = req.headers["last-event-id"];
    if (typeof last === "string" || filter.sinceMs !== undefined) {
      const recent = events.recent(filter);
      const from = typeof last === "string" ? recent.findIndex((e) => e.id === last) + 1 : 0;
      for (const e of recent.slice(from)) send(e);
    }
    const unsubscribe = events.subscribe(send);
    const beat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
    beat.unref();
    res.once("close", () => {
      open--;
      clearInterval(beat);
      unsubscribe();
    });
  };
}
