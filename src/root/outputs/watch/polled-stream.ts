import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Server-sent events of a JSON view the root computes (the inventory, a partition's ranking): the
 * whole view first (`event: snapshot`, `{"items": {key: value}}`), then each interval the items whose
 * JSON changed and the keys that left (`event: update`, `{"items": {...}, "gone": [...]}`), only when
 * something did. At most `maxStreams` open (a 503 past it); a reader that lets 1 MiB pile up is closed.
 */
export function polledStream(
  view: (url: URL) => ReadonlyMap<string, unknown> | string | Promise<ReadonlyMap<string, unknown> | string>,
  intervalMs: () => number,
  maxStreams = 16,
): (req: IncomingMessage, res: ServerResponse, url: URL) => void {
  let open = 0;
  // A view that fails answers 500 (or ends the stream); never an unhandled rejection in the root.
  return (_req, res, url) => void serve(res, url).catch(() => (res.headersSent ? res.destroy() : res.writeHead(500).end()));
  async function serve(res: ServerResponse, url: URL): Promise<void> {
    const first = await view(url);
    if (typeof first === "string") {
      res.writeHead(400, { "content-type": "text/plain" }).end(first + "\n");
      return;
    }
    if (open >= maxStreams) {
      res.writeHead(503, { "content-type": "text/plain", "retry-after": "10" }).end(`${maxStreams} streams of this view are open, the most a root serves\n`);
      return;
    }
    open++;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
    let last = new Map<string, string>();
    const send = (kind: "snapshot" | "update", now: ReadonlyMap<string, unknown>): void => {
      const items: Record<string, unknown> = {};
      const next = new Map<string, string>();
      let changed = 0;
      for (const [k, v] of now) {
        const json = JSON.stringify(v);
        next.set(k, json);
        if (kind === "snapshot" || last.get(k) !== json) {
          items[k] = v;
          changed++;
        }
      }
      const gone = kind === "snapshot" ? [] : [...last.keys()].filter((k) => !next.has(k));
      last = next;
      if (kind === "update" && changed === 0 && gone.length === 0) return;
      if (res.writableLength > 1024 * 1024) return void res.destroy();
      res.write(`event: ${kind}\ndata: ${JSON.stringify({ time_ms: Date.now(), items, ...(kind === "update" ? { gone } : {}) })}\n\n`);
    };
    send("snapshot", first);
    let busy = false;
    const timer = setInterval(() => {
      if (busy) return;
      busy = true;
      void Promise.resolve(view(url))
        .then((now) => {
          if (typeof now !== "string" && !res.destroyed) send("update", now);
        })
        .catch(() => res.destroy())
        .finally(() => (busy = false));
    }, Math.max(100, intervalMs()));
    timer.unref();
    res.once("close", () => {
      open--;
      clearInterval(timer);
    });
  }
}
