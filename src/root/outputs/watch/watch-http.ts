import type { IncomingMessage, ServerResponse } from "node:http";
import { formatValue } from "../../exposition/exposition-text.js";
import type { WatchHub } from "./watch-hub.js";
import { watchPartsOf, watchSpecOf, type WatchRequestParts, type WatchSpec } from "./watch-spec.js";
import type { WatchMessage, WatchSample, WatchSink } from "./watcher.js";

/** A sample in Prometheus' instant-vector JSON: `{"metric": {...}, "value": [<unix s>, "<value>"]}` (and `"gone": true`). */
function vectorElement(s: WatchSample): string {
  const head = `{"metric":${JSON.stringify(s.labels)},"value":[${s.timeMs / 1000},"${formatValue(s.value)}"]`;
  return s.gone === true ? `${head},"gone":true}` : `${head}}`;
}

/** A message as an SSE event: `event: snapshot|update`, data `{"time_ms": …, "result": [instant-vector elements]}`. */
export function sseEvent(m: WatchMessage): string {
  return `event: ${m.kind}\ndata: {"time_ms":${m.timeMs},"result":[${m.samples.map(vectorElement).join(",")}]}\n\n`;
}

/** An SSE response as a watch sink; `onClose` runs when the consumer goes or the hub drops it. */
export function sseSink(res: ServerResponse): WatchSink {
  return {
    send: (m) => void res.write(sseEvent(m)),
    pendingBytes: () => res.writableLength,
    close: (reason) => {
      res.end(`event: dropped\ndata: ${JSON.stringify({ reason })}\n\n`);
    },
  };
}

/**
 * `GET /api/v1/watch?match[]=…&agg=…&by=…&interval_ms=…`: the watch API as server-sent events (the
 * same messages as the gRPC form). The first event is the current state.
 */
export function watchStream(hub: WatchHub, defaultIntervalMs: number): (req: IncomingMessage, res: ServerResponse, url: URL) => void {
  return (_req, res, url) => {
    const spec = watchSpecOf(watchPartsOf(url.searchParams), defaultIntervalMs);
    if (typeof spec === "string") {
      hub.refusedRequest("bad_request");
      res.writeHead(400, { "content-type": "text/plain" }).end(spec + "\n");
      return;
    }
    openSse(hub, spec, res);
  };
}

/** Opens a watch answered as server-sent events on `res` (a 503 when the hub refuses it). */
export function openSse(hub: WatchHub, spec: WatchSpec, res: ServerResponse, sink: WatchSink = sseSink(res)): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  const w = hub.open(spec, sink);
  if (typeof w === "string") {
    res.end(`event: dropped\ndata: ${JSON.stringify({ reason: w })}\n\n`);
    return;
  }
  const beat = setInterval(() => res.write(": keep-alive\n\n"), 15_000);
  beat.unref();
  res.once("close", () => {
    clearInterval(beat);
    hub.close(w);
  });
}

const QUERY = /^\s*(sum|avg|min|max|count)\s*(?:by\s*\(([^)]*)\)\s*)?\((.*)\)\s*$/s;

/**
 * `GET /api/v1/query`: the current values as Prometheus' instant-vector JSON, so its clients parse
 * it. `match[]` (with `agg`, `by`) as the watch takes them, or `query=` with one selector or
 * `<op> by (<labels>) (<selector>)`, the PromQL this root can answer.
 */
export function queryRoute(hub: WatchHub, defaultIntervalMs: number): (req: IncomingMessage, url: URL) => Promise<{ status: number; type: string; body: string }> {
  return async (_req, url) => {
    let parts: WatchRequestParts = watchPartsOf(url.searchParams);
    const q = url.searchParams.get("query");
    if (q !== null) {
      const m = QUERY.exec(q);
      parts = m === null ? { match: [q] } : { match: [m[3]!], agg: m[1]!, by: m[2] !== undefined ? [m[2]] : [] };
    }
    const spec = watchSpecOf(parts, defaultIntervalMs);
    const error = (status: number, errorType: string, msg: string) => ({ status, type: "application/json", body: JSON.stringify({ status: "error", errorType, error: msg }) });
    if (typeof spec === "string") return error(400, "bad_data", spec);
    const samples = hub.query(spec);
    if (typeof samples === "string") return error(422, "execution", samples);
    return { status: 200, type: "application/json", body: `{"status":"success","data":{"resultType":"vector","result":[${samples.map(vectorElement).join(",")}]}}` };
  };
}
