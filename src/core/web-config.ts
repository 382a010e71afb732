import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions } from "node:https";
import type { TLSSocket } from "node:tls";
import bcrypt from "bcrypt";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { BanyanError, Code } from "./errors.js";

/**
 * Prometheus' web configuration file (exporter-toolkit's `--web.config.file`), so a site reuses what
 * it has for node_exporter: `tls_server_config` (cert_file, key_file, client_auth_type,
 * client_ca_file, min_version, max_version) and `basic_auth_users` (user: bcrypt hash). Keys this
 * reader does not implement are an error naming them, never silently ignored.
 */
const TLS_VERSIONS = { TLS10: "TLSv1", TLS11: "TLSv1.1", TLS12: "TLSv1.2", TLS13: "TLSv1.3" } as const;
const CLIENT_AUTH = ["NoClientCert", "RequestClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] as const;

const webConfigSchema = z.strictObject({
  tls_server_config: z
    .strictObject({
      cert_file: z.string().min(1),
      key_file: z.string().min(1),
      client_auth_type: z.enum(CLIENT_AUTH).default("NoClientCert"),
      client_ca_file: z.string().min(1).optional(),
      min_version: z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS]).default("TLS12"),
      max_version: z.enum(Object.keys(TLS_VERSIONS) as [keyof typeof TLS_VERSIONS]).default("TLS13"),
    })
    .optional(),
  basic_auth_users: z.record(z.string().min(1), z.string().regex(/^\$2[abxy]?\$\d\d\$.{53}$/, "expected a bcrypt hash ($2y$10$…, as htpasswd -B makes)")).optional(),
});

export interface WebConfig {
  readonly path: string;
  readonly tls: (ServerOptions & { readonly clientAuth: (typeof CLIENT_AUTH)[number] }) | null;
  /** user → bcrypt hash; empty: no authentication. */
  readonly users: ReadonlyMap<string, string>;
}

/** Reads and checks a web config file; a config error names the file and the key. */
export function readWebConfig(path: string, key: string): WebConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, "utf8")) ?? {};
  } catch (err) {
    throw new BanyanError(Code.InvalidConfig, `${key}: ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: expected a readable YAML file in Prometheus' web config format`, { cause: err });
  }
  const parsed = webConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BanyanError(Code.InvalidConfig, `${key}: ${path}: ${issue.path.join(".") || "(top)"}: ${issue.message}`);
  }
  const c = parsed.data;
  const file = (p: string, what: string): Buffer => {
    try {
      return readFileSync(p);
    } catch (err) {
      throw new BanyanError(Code.InvalidConfig, `${key}: ${path}: ${what}: ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  let tls: WebConfig["tls"] = null;
  const t = c.tls_server_config;
  if (t !== undefined) {
    const verifies = t.client_auth_type === "VerifyClientCertIfGiven" || t.client_auth_type === "RequireAndVerifyClientCert";
    if (verifies && t.client_ca_file === undefined) throw new BanyanError(Code.InvalidConfig, `${key}: ${path}: tls_server_config.client_ca_file: expected one with client_auth_type ${t.client_auth_type}`);
    tls = {
      cert: file(t.cert_file, "tls_server_config.cert_file"),
      key: file(t.key_file, "tls_server_config.key_file"),
      ...(t.client_ca_file !== undefined ? { ca: file(t.client_ca_file, "tls_server_config.client_ca_file") } : {}),
      requestCert: t.client_auth_type !== "NoClientCert",
      rejectUnauthorized: t.client_auth_type === "RequireAndVerifyClientCert",
      minVersion: TLS_VERSIONS[t.min_version],
      maxVersion: TLS_VERSIONS[t.max_version],
      clientAuth: t.client_auth_type,
    };
  }
  return { path, tls, users: new Map(Object.entries(c.basic_auth_users ?? {})) };
}

/** HTTP, or HTTPS when the web config has tls_server_config. */
export function createWebServer(listener: RequestListener, web: WebConfig | null): Server | HttpsServer {
  if (web?.tls == null) return createHttpServer(listener);
  const { clientAuth: _clientAuth, ...options } = web.tls;
  return createHttpsServer(options, listener);
}

/** Most (user, password) pairs remembered as verified: bcrypt costs ~50 ms a check, a scrape every few seconds would pay it each time. */
const MAX_REMEMBERED = 256;

/**
 * Who may ask: the client certificate the web config requires, and basic auth against its bcrypt
 * hashes (checked in libuv's pool, off the event loop; a verified pair is remembered, hashed, so a
 * scraper pays bcrypt once). Replaced whole on reload.
 */
export class WebAuth {
  private readonly verified = new Set<string>();

  constructor(private readonly web: WebConfig | null) {}

  /** Null when the request may go on, else the status and headers to answer with. */
  async refusal(req: IncomingMessage): Promise<{ status: number; headers: Record<string, string>; body: string } | null> {
    const web = this.web;
    if (web === null) return null;
    if (web.tls !== null) {
      const socket = req.socket as TLSSocket;
      const cert = typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate() : null;
      const given = cert !== null && Object.keys(cert).length > 0;
      if (web.tls.clientAuth === "RequireAnyClientCert" && !given) return { status: 403, headers: {}, body: "a client certificate is required\n" };
      if (web.tls.clientAuth === "VerifyClientCertIfGiven" && given && !socket.authorized) return { status: 403, headers: {}, body: "the client certificate is not of the configured CA\n" };
    }
    if (await this.basicAuthorized(req.headers.authorization)) return null;
    return { status: 401, headers: { "www-authenticate": 'Basic realm="banyan"' }, body: "Unauthorized\n" };
  }

  /** Whether an Authorization header passes the config's basic auth (true when it has no users). */
  async basicAuthorized(header: string | undefined): Promise<boolean> {
    const web = this.web;
    if (web === null || web.users.size === 0) return true;
    const given = basicCredentials(header);
    if (given === null) return false;
    const { user, password } = given;
    const hash = web.users.get(user);
    if (hash === undefined || password.length === 0) return false;
    const key = createHash("sha256").update(`${user}\0${password}\0${hash}`).digest("base64");
    if (this.verified.has(key)) return true;
    // Node's bcrypt takes $2a$/$2b$; htpasswd -B writes $2y$, the same algorithm.
    const ok = await bcrypt.compare(password, hash.replace(/^\$2y\$/, "$2b$"));
    if (!ok) return false;
    if (this.verified.size >= MAX_REMEMBERED) this.verified.clear();
    this.verified.add(key);
    return true;
  }
}

/** The user and password of an `Authorization: Basic …` header, or null for any other header. */
export function basicCredentials(header: string | undefined): { user: string; password: string } | null {
  const m = /^Basic\s+(\S+)$/i.exec(header ?? "");
  if (m === null) return null;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? null : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
