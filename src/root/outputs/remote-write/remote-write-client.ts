import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { BanyanError, Code } from "../../../core/errors.js";
import { VERSION } from "../../../core/version.js";
import type { RemoteWriteConfig } from "./remote-write-config.js";
import { SigV4Signer } from "./sigv4-signer.js";

/** How a request ended: the status (0: no answer) and, for 429/5xx, how long the receiver asked us to wait. */
export interface SendResult {
  readonly status: number;
  readonly retryAfterMs: number | null;
  /** X-Prometheus-Remote-Write-Samples-Written of a 2.0 answer; null when the receiver did not say (a 1.x receiver). */
  readonly written: number | null;
  /** The start of the receiver's answer (or the network error), for the log. */
  readonly detail: string;
}

/**
 * POSTs snappy-compressed requests to one receiver, as remote_write 1.0 or 2.0 asks: the protocol's
 * headers (2.0's content type and version for a 2.0 request), the site's own headers, basic auth or a bearer token (files read at construction, so a
 * reload picks up a rotated secret), TLS with the site's CA and client certificate, and one
 * keep-alive connection pool.
 */
export class RemoteWriteClient {
  private readonly url: URL;
  private readonly agent: http.Agent;
  private readonly headers: Record<string, string>;
  private readonly signer: SigV4Signer | null;

  constructor(private readonly config: Readonly<RemoteWriteConfig>) {
    this.url = new URL(config.url);
    const tls = config.tls;
    const read = (path: string, what: string): Buffer => {
      try {
        return readFileSync(path);
      } catch (err) {
        throw new BanyanError(Code.InvalidConfig, `remoteWrite ${redactUrl(config.url)}: cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
      }
    };
    this.agent =
      this.url.protocol === "https:"
        ? new https.Agent({
            keepAlive: true,
            maxSockets: config.queue.concurrency,
            ...(tls?.caFile ? { ca: read(tls.caFile, "tls.caFile") } : {}),
            ...(tls?.certFile ? { cert: read(tls.certFile, "tls.certFile") } : {}),
            ...(tls?.keyFile ? { key: read(tls.keyFile, "tls.keyFile") } : {}),
            ...(tls?.serverName ? { servername: tls.serverName } : {}),
            rejectUnauthorized: !(tls?.insecureSkipVerify ?? false),
          })
        : new http.Agent({ keepAlive: true, maxSockets: config.queue.concurrency });
    this.headers = {
      ...config.headers,
      "Content-Type": "application/x-protobuf",
      "Content-Encoding": "snappy",
      "User-Agent": `banyan/${VERSION}`,
      "X-Prometheus-Remote-Write-Version": "0.1.0",
    };
    this.signer = config.sigv4 !== undefined ? new SigV4Signer(config.sigv4) : null;
    if (config.basicAuth !== undefined) {
      const password = config.basicAuth.password ?? read(config.basicAuth.passwordFile!, "basicAuth.passwordFile").toString("utf8").trim();
      this.headers["Authorization"] = `Basic ${Buffer.from(`${config.basicAuth.username}:${password}`).toString("base64")}`;
    } else if (config.bearerTokenFile !== undefined) {
      this.headers["Authorization"] = `Bearer ${read(config.bearerTokenFile, "bearerTokenFile").toString("utf8").trim()}`;
    }
  }

  /** Sends one compressed request; never throws (a failure is a status 0 with the reason). */
  async send(body: Buffer, attempt: number, v2: boolean, zstd = false): Promise<SendResult> {
    const headers: Record<string, string> = { ...this.headers, "Content-Length": String(body.length) };
    if (zstd) headers["Content-Encoding"] = "zstd";
    if (v2) {
      headers["Content-Type"] = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
      headers["X-Prometheus-Remote-Write-Version"] = "2.0.0";
    }
    if (attempt > 0) headers["Retry-Attempt"] = String(attempt);
    if (this.signer !== null) {
      try {
        Object.assign(headers, await this.signer.sign("POST", this.url, headers, body));
      } catch (err) {
        // No credentials yet (the chain found none, or a role could not be assumed): retried like no answer.
        return { status: 0, retryAfterMs: null, written: null, detail: `sigv4: ${(err as Error).message}` };
      }
    }
    return this.post(body, headers);
  }

  private post(body: Buffer, headers: Record<string, string>): Promise<SendResult> {
    const mod = this.url.protocol === "https:" ? https : http;
    return new Promise((resolve) => {
      const req = mod.request(this.url, { method: "POST", agent: this.agent, headers, timeout: this.config.queue.timeoutMs }, (res) => {
        let detail = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (detail.length < 512) detail += chunk;
        });
        const written = res.headers["x-prometheus-remote-write-samples-written"];
        const w = typeof written === "string" && /^\d+$/.test(written.trim()) ? Number(written.trim()) : null;
        res.on("end", () => resolve({ status: res.statusCode ?? 0, retryAfterMs: retryAfterMs(res.headers["retry-after"]), written: w, detail: detail.slice(0, 512).trim() }));
        res.on("error", (err) => resolve({ status: 0, retryAfterMs: null, written: null, detail: err.message }));
      });
      req.on("timeout", () => req.destroy(new Error(`no answer in ${this.config.queue.timeoutMs} ms`)));
      req.on("error", (err) => resolve({ status: 0, retryAfterMs: null, written: null, detail: err.message }));
      req.end(body);
    });
  }

  /** VictoriaMetrics' probe: true when the receiver takes zstd-compressed 1.0 requests (it answers 1). */
  probeZstd(): Promise<boolean> {
    const mod = this.url.protocol === "https:" ? https : http;
    const url = new URL(this.url);
    url.searchParams.set("get_vm_proto_version", "1");
    return new Promise((resolve) => {
      const req = mod.request(url, { method: "GET", agent: this.agent, headers: { "User-Agent": this.headers["User-Agent"]!, ...(this.headers["Authorization"] ? { Authorization: this.headers["Authorization"] } : {}) }, timeout: this.config.queue.timeoutMs }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c.slice(0, 16)));
        res.on("end", () => resolve(res.statusCode === 200 && text.trim() === "1"));
        res.on("error", () => resolve(false));
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => resolve(false));
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Retry-After as seconds or an HTTP date, in ms; null when absent or unreadable. */
export function retryAfterMs(h: string | string[] | undefined, nowMs = Date.now()): number | null {
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined || v.trim() === "") return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - nowMs);
}

/** The URL without its credentials, for logs and metric labels. */
export function redactUrl(u: string): string {
  try {
    const url = new URL(u);
    url.username = "";
    url.password = "";
    return url.toString();
  } catch {
    return "(bad url)";
  }
}
