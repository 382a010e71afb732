import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Registry } from "prom-client";
import { BanyanError, Code } from "../../core/errors.js";
import { boundHttpServer, DEFAULT_HTTP_BOUNDS, readBody, type HttpBounds } from "../../core/http-bounds.js";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import { WebAuth, createWebServer, type WebConfig } from "../../core/web-config.js";
import { counter } from "../../core/metric-names.js";
import { parseHostPort } from "../../wire/uplink-grpc.js";
import type { PageParts } from "../exposition/exposition-cache.js";
import { OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, type ExpositionFormat } from "../exposition/exposition-text.js";
import { SharedPage } from "../exposition/shared-page.js";
import { Counter, Histogram } from "prom-client";

export type RouteHandler = (req: IncomingMessage, url: URL) => Promise<{ status: number; type: string; body: string; headers?: Readonly<Record<string, string>> } | null>;

/** A route's JSON answer. */
export const json = (status: number, body: unknown): { status: number; type: string; body: string } => ({ status, type: "application/json", body: JSON.stringify(body) });

/**
 * The root's HTTP side: /metrics (text 0.0.4, or OpenMetrics when the Accept header asks for it;
 * gzip when Accept-Encoding allows, compressed off the event loop), /-/healthy, /-/ready, and the
 * routes other parts register (status, jobs…).
 */
export class RootHttpServer {
  private readonly server: Server | HttpsServer;
  private auth: WebAuth;
  private readonly routes = new Map<string, RouteHandler>();
  /** Routes that also take POST with a form body (Prometheus' API: Grafana's data source posts by default). */
  private readonly formPosts = new Set<string>();
  private readonly streams = new Map<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void>();
  private readonly watchRoutes = new Map<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void>();
  private ready = false;
  private readonly renderSeconds: Histogram;
  private readonly pages = new SharedPage();
  private readonly failed: LimitedWarning;

  constructor(
    private readonly renderPage: (format: ExpositionFormat) => Promise<PageParts>,
    log: Logger,
    registry: Registry,
    /** zlib level for gzip responses; 0 sends the page uncompressed even when gzip is accepted. */
    private gzipLevel = 1,
    bounds: HttpBounds = DEFAULT_HTTP_BOUNDS,
    /** Prometheus' web config (TLS, basic auth), or none: plain HTTP for anyone who reaches the port. */
    private web: WebConfig | null = null,
  ) {
    this.auth = new WebAuth(web);
    const busy = counter(registry, "banyan_http_requests_refused_total", "HTTP requests answered 503: too many in flight (web.maxConcurrentRequests).");
    this.failed = new LimitedWarning(log, "http handler failed");
    this.renderSeconds = new Histogram({
      name: "banyan_root_render_seconds",
      help: "Time to render the /metrics page.",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.server = createWebServer((req, res) => {
      const admitted = admission.admit(res);
      if (admitted === null) {
        busy.inc();
        res.writeHead(503, { "content-type": "text/plain", "retry-after": "1" }).end("too many requests in flight\n");
        return;
      }
      this.guarded(req, res, admitted).catch((err: unknown) => {
        // A peer can trigger this at will: one line a second at most.
        this.failed.warn({ err: (err as Error).message, url: req.url?.slice(0, 200) });
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end("internal error\n");
      });
    }, web);
    const connectionsRefused = new Counter({ name: "banyan_http_connections_refused_total", help: "HTTP connections closed before their request: past web.maxConnectionsPerAddress, request headers not whole within web.headersTimeoutMs, or the oldest of web.maxPendingConnections closed for a newcomer.", labelNames: ["reason"], registers: [registry] });
    const admission = boundHttpServer(this.server, bounds, (reason) => connectionsRefused.inc({ reason }));
  }

  /**
   * A reloaded web config: users and client-certificate rules at once, TLS certificates for new
   * connections. Plain HTTP cannot become HTTPS (or back) without a restart: that is refused.
   */
  setWebConfig(web: WebConfig | null): void {
    if ((web?.tls == null) !== (this.web?.tls == null)) throw new BanyanError(Code.InvalidConfig, `web.configFile: switching /metrics between HTTP and HTTPS needs a restart`);
    if (web?.tls != null) (this.server as HttpsServer).setSecureContext(web.tls);
    this.web = web;
    this.auth = new WebAuth(web);
  }

  setGzipLevel(level: number): void {
    this.gzipLevel = level;
  }

  /** A long-lived response (server-sent events) at exactly `path`: no send timeout; the handler bounds itself. */
  streamRoute(path: string, handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void): void {
    this.streams.set(path, handler);
  }

  /**
   * A stream under `prefix` for a client that asks for one (`Accept: text/event-stream`, as
   * EventSource does, or `?watch=1`); other requests of the path go to the plain routes.
   */
  watchRoute(prefix: string, handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void): void {
    this.watchRoutes.set(prefix, handler);
  }

  route(path: string, handler: RouteHandler, options: { formPost?: boolean } = {}): void {
    this.routes.set(path, handler);
    if (options.formPost === true) this.formPosts.add(path);
  }

  setReady(ready: boolean): void {
    this.ready = ready;
  }

  async listen(address: string): Promise<number> {
    const { host, port } = parseHostPort(address, "http address");
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", (err) => reject(new BanyanError(Code.InvalidConfig, `cannot listen on ${address}: ${err.message}`, { cause: err })));
      this.server.listen(port, host.replace(/^\[|\]$/g, ""), () => resolve());
    });
    const addr = this.server.address();
    return typeof addr === "object" && addr !== null ? addr.port : port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async guarded(req: IncomingMessage, res: ServerResponse, admitted: { longLived(): void }): Promise<void> {
    const refused = await this.auth.refusal(req);
    if (refused !== null) {
      res.writeHead(refused.status, { "content-type": "text/plain", ...refused.headers }).end(refused.body);
      return;
    }
    const url = new URL(req.url ?? "/", "http://root");
    const stream = req.method === "GET" ? (this.streams.get(url.pathname) ?? this.watchRouteOf(req, url)) : undefined;
    if (stream !== undefined) {
      admitted.longLived();
      stream(req, res, url);
      return;
    }
    return this.handle(req, res);
  }

  private watchRouteOf(req: IncomingMessage, url: URL): ((req: IncomingMessage, res: ServerResponse, url: URL) => void) | undefined {
    if (!/\btext\/event-stream\b/.test(req.headers.accept ?? "") && url.searchParams.get("watch") !== "1") return undefined;
    for (const [prefix, handler] of this.watchRoutes) if (url.pathname.startsWith(prefix)) return handler;
    return undefined;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://root");
    if (req.method === "POST" && this.formPosts.has(url.pathname)) {
      // As Prometheus' API: the form's fields join the URL's. A body is bounded (a query is short).
      if (!/^application\/x-www-form-urlencoded\b/.test(req.headers["content-type"] ?? "")) {
        res.writeHead(415, { "content-type": "text/plain" }).end("expected Content-Type: application/x-www-form-urlencoded\n");
        return;
      }
      const body = (await readBody(req, MAX_FORM_BYTES))?.toString("utf8") ?? null;
      if (body === null) {
        res.writeHead(413, { "content-type": "text/plain" }).end(`a form body of at most ${MAX_FORM_BYTES} bytes\n`);
        return;
      }
      for (const [k, v] of new URLSearchParams(body)) url.searchParams.append(k, v);
      return this.respond(req, res, url);
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: this.formPosts.has(url.pathname) ? "GET, HEAD, POST" : "GET, HEAD" }).end();
      return;
    }
    return this.respond(req, res, url);
  }

  private async respond(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (url.pathname === "/metrics") return this.metrics(req, res);
    if (url.pathname === "/-/healthy") {
      res.writeHead(200, { "content-type": "text/plain" }).end("Banyan root is healthy.\n");
      return;
    }
    if (url.pathname === "/-/ready") {
      res.writeHead(this.ready ? 200 : 503, { "content-type": "text/plain" }).end(this.ready ? "Banyan root is ready.\n" : "Banyan root is starting.\n");
      return;
    }
    for (const [prefix, handler] of this.routes) {
      if (url.pathname === prefix || url.pathname.startsWith(prefix + "/")) {
        const r = await handler(req, url);
        if (r !== null) {
          res.writeHead(r.status, { "content-type": r.type, ...r.headers }).end(r.body);
          return;
        }
      }
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  }

  private async metrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const format: ExpositionFormat = /application\/openmetrics-text/.test(req.headers.accept ?? "") ? "openmetrics" : "text";
    const end = this.renderSeconds.startTimer();
    const page = await this.pages.acquire(format, () => this.renderPage(format));
    end();
    const headers: Record<string, string> = { "content-type": format === "openmetrics" ? OPENMETRICS_CONTENT_TYPE : TEXT_CONTENT_TYPE };
    if (this.gzipLevel > 0 && /\bgzip\b/.test(req.headers["accept-encoding"] ?? "")) {
      // Level 1 by default: on a 45 MB page zlib's default level 6 took 3.9 s, level 1 1.1 s for a
      // 16 % larger body — compression, not rendering, dominated a large scrape.
      let zipped: Buffer;
      try {
        zipped = await page.gzip(this.gzipLevel);
      } finally {
        page.release();
      }
      headers["content-encoding"] = "gzip";
      res.writeHead(200, headers).end(req.method === "HEAD" ? undefined : zipped);
      return;
    }
    if (req.method === "HEAD") {
      page.release();
      res.writeHead(200, headers).end();
      return;
    }
    // The page's memory is reused by the next scrape once this response is done with it.
    res.once("close", () => page.release());
    res.writeHead(200, headers).end(page.body);
  }
}

/** A form body is a query's fields: 64 KiB is far more than any (Prometheus' own limit is larger, for remote read). */
const MAX_FORM_BYTES = 64 * 1024;
