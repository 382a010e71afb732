import type { IncomingMessage, ServerResponse } from "node:http";
import type { JobAggregate, RootJobs } from "../fleet/root-jobs.js";
import type { WatchHub } from "../outputs/watch/watch-hub.js";
import { openSse } from "../outputs/watch/watch-http.js";
import { watchSpecOf } from "../outputs/watch/watch-spec.js";
import type { WatchSink } from "../outputs/watch/watcher.js";

/** What a job watch sends: the job's figures across its nodes, with rates since the previous message. */
export interface JobWatchFigures extends JobAggregate {
  /** CPU cores in use (CPU seconds a second) across its nodes; null in the first message. */
  cpu_cores: number | null;
  io_read_bytes_per_s: number | null;
  io_written_bytes_per_s: number | null;
}

const JOB_ID = /^[A-Za-z0-9_.+-]{1,64}$/;

/**
 * `GET /api/v1/jobs/<id>` asked as a stream (`Accept: text/event-stream`, or `?watch=1`): the job's
 * figures (as /api/v1/jobs/<id> gives them, plus CPU cores and I/O rates) each time one of its
 * nodes' banyan_job_* series changes, once per interval at most; the first event is the state now.
 * A watcher of the hub on `{__name__=~"banyan_job_.*",job_id="<id>"}`, so its bounds are the hub's.
 */
export function jobWatchStream(hub: WatchHub, jobs: RootJobs, intervalMs: number): (req: IncomingMessage, res: ServerResponse, url: URL) => void {
  return (_req, res, url) => {
    let id: string;
    try {
      id = decodeURIComponent(url.pathname.slice("/api/v1/jobs/".length));
    } catch {
      id = "";
    }
    if (!JOB_ID.test(id)) {
      res.writeHead(400, { "content-type": "text/plain" }).end("expected /api/v1/jobs/<job id> (letters, digits, _ . + -)\n");
      return;
    }
    const spec = watchSpecOf({ match: [`{__name__=~"banyan_job_.*",job_id="${id}"}`] }, intervalMs);
    if (typeof spec === "string") throw new Error(spec);
    let prev: { atMs: number; cpu: number | null; read: number | null; written: number | null } | null = null;
    const sink: WatchSink = {
      send: (m) => {
        // Figures refreshed at this flush will do: the job watchers of one flush share one refresh.
        const j = jobs.get(id, m.timeMs);
        const now = m.timeMs;
        if (j === undefined) {
          res.write(`event: job\ndata: ${JSON.stringify({ job_id: id, seen: false })}\n\n`);
          return;
        }
        const dt = prev !== null ? (now - prev.atMs) / 1000 : 0;
        const rate = (v: number | null, p: number | null | undefined): number | null => (prev !== null && dt > 0 && v !== null && p != null ? Math.max(0, (v - p) / dt) : null);
        const figures: JobWatchFigures = { ...j, cpu_cores: rate(j.cpu_seconds, prev?.cpu), io_read_bytes_per_s: rate(j.io_read_bytes, prev?.read), io_written_bytes_per_s: rate(j.io_written_bytes, prev?.written) };
        prev = { atMs: now, cpu: j.cpu_seconds, read: j.io_read_bytes, written: j.io_written_bytes };
        res.write(`event: job\ndata: ${JSON.stringify(figures)}\n\n`);
      },
      pendingBytes: () => res.writableLength,
      close: (reason) => void res.end(`event: dropped\ndata: ${JSON.stringify({ reason })}\n\n`),
    };
    openSse(hub, spec, res, sink);
  };
}
