import { createServer, type IncomingMessage, type Server } from "node:http";
import { BanyanError, Code } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { SeriesType } from "../series/series-def.js";
import { parseExposition, type ParsedSample } from "../series/text-parser.js";
import { parseHostPort } from "../wire/uplink-grpc.js";
import { SeriesWriter } from "./collectors/series-writer.js";
import type { SampleTarget, Source } from "./source.js";

/** The job a token belongs to, and its labels. */
export interface PushAuth {
  jobOfToken(token: string): string | undefined;
  jobLabels(jobId: string): Record<string, string> | undefined;
}

interface Group {
  readonly grouping: Record<string, string>;
  readonly jobId: string | null;
  samples: ParsedSample[];
}

const MAX_BODY_BYTES = 16 * 1024 * 1024;

/**
 * A Pushgateway-compatible endpoint on the node (127.0.0.1), so a job publishes its own progress
 * with any Prometheus client's push function: `PUT|POST|DELETE /metrics/job/<job>[/<label>/<value>…]`.
 * A push naming a Slurm job (`slurm_job_id` in the path) must carry that job's token (Bearer, or the
 * password of Basic auth) — the prolog wrote it where only the job's user can read it. Pushed series
 * carry the job's labels and leave when the job ends or the group is deleted. As a Source, the
 * server hands the pushed series to the sampler each tick.
 */
export class PushServer implements Source {
  readonly name = "push";
  private readonly groups = new Map<string, Group>();
  private server: Server | null = null;
  private writer: SeriesWriter | null = null;

  constructor(
    private readonly listenAddress: string,
    private readonly auth: PushAuth,
    private readonly log: Logger,
  ) {}

  async listen(): Promise<number> {
    const { host, port } = parseHostPort(this.listenAddress, "jobs.pushListen");
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        ({ status, body }) => {
          if (status >= 400) this.log.debug({ status, path: req.url, reason: body.trim() }, "push refused");
          res.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(body);
        },
        () => res.writeHead(500).end("internal error\n"),
      );
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", (err) => reject(new BanyanError(Code.InvalidConfig, `cannot listen on ${this.listenAddress}: ${err.message}`)));
      this.server!.listen(port, host, () => resolve());
    });
    const addr = this.server.address();
    return typeof addr === "object" && addr !== null ? addr.port : port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** The job ended: its groups leave. */
  endJob(jobId: string): void {
    for (const [k, g] of this.groups) if (g.jobId === jobId) this.groups.delete(k);
  }

  collect(target: SampleTarget): void {
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    for (const g of this.groups.values()) {
      const context = g.jobId !== null ? (this.auth.jobLabels(g.jobId) ?? {}) : {};
      for (const s of g.samples) {
        const type = s.type === SeriesType.Untyped && /_(total|count|sum|bucket)$/.test(s.name) ? SeriesType.Counter : s.type;
        w.put(s.name, { ...s.labels, ...g.grouping, ...context }, s.value, type, s.help);
      }
    }
    w.end();
  }

  private async handle(req: IncomingMessage): Promise<{ status: number; body: string }> {
    const url = new URL(req.url ?? "/", "http://push");
    if (req.method === "GET" && url.pathname === "/-/healthy") return { status: 200, body: "OK\n" };
    const parts = url.pathname.split("/").slice(1);
    if (parts[0] !== "metrics" || parts[1] !== "job" || !parts[2] || parts.length % 2 !== 1) {
      return { status: 404, body: "expected /metrics/job/<job>[/<label>/<value>…]\n" };
    }
    const grouping: Record<string, string> = { job: decodeURIComponent(parts[2]) };
    for (let k = 3; k + 1 < parts.length; k += 2) grouping[decodeURIComponent(parts[k]!)] = decodeURIComponent(parts[k + 1]!);
    const token = tokenOf(req.headers.authorization);
    const named = grouping["slurm_job_id"];
    const owner = token === null ? undefined : this.auth.jobOfToken(token);
    if (token !== null && owner === undefined) return { status: 403, body: "the token belongs to no job running on this node\n" };
    if (named !== undefined && token === null) return { status: 401, body: `a push for Slurm job ${named} needs that job's token (the file the prolog wrote for it)\n` };
    if (named !== undefined && owner !== named) return { status: 403, body: `the token is not job ${named}'s\n` };
    const jobId = owner ?? null;
    const key = JSON.stringify(Object.entries(grouping).sort());
    if (req.method === "DELETE") {
      this.groups.delete(key);
      return { status: 202, body: "" };
    }
    if (req.method !== "PUT" && req.method !== "POST") return { status: 405, body: "PUT, POST or DELETE\n" };
    const body = await readBody(req);
    if (body === null) return { status: 413, body: `body over ${MAX_BODY_BYTES} bytes\n` };
    const parsed = parseExposition(body);
    if (parsed.errors.length > 0) {
      return { status: 400, body: parsed.errors.map((e) => `line ${e.line}: ${e.message}`).join("\n") + "\n" };
    }
    const old = this.groups.get(key);
    if (req.method === "POST" && old !== undefined) {
      // POST replaces only the metrics it names, as the Pushgateway does.
      const names = new Set(parsed.samples.map((s) => s.family));
      old.samples = [...old.samples.filter((s) => !names.has(s.family)), ...parsed.samples];
    } else {
      this.groups.set(key, { grouping, jobId, samples: parsed.samples });
    }
    return { status: 200, body: "" };
  }
}

function tokenOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const bearer = /^Bearer\s+(\S+)$/i.exec(header);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+(\S+)$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, "base64").toString("utf8");
    return decoded.slice(decoded.indexOf(":") + 1);
  }
  return null;
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY_BYTES) return null;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
