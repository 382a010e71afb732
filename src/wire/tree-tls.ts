import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import type { Topology } from "../topology/topology-file.js";
import { BanyanError, Code } from "../core/errors.js";
import { unreadableBecause } from "../core/unix-accounts.js";

/** `tree.tls` in every daemon's config: the site CA and this daemon's own certificate and key (PEM). */
export const treeTlsSchema = z.strictObject({
  /** PEM file of the site CA (`banyan certs` makes it): a peer's certificate must be signed by it. */
  caFile: z.string().min(1),
  /** PEM file of this daemon's certificate, naming it (`banyan certs`: <name>.crt). */
  certFile: z.string().min(1),
  /** PEM file of its key (mode 600, readable by the daemon's user). */
  keyFile: z.string().min(1),
});
export type TreeTlsConfig = z.infer<typeof treeTlsSchema>;

interface Material {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly shown: ShownCertificate;
}

/** Which certificate a daemon shows (logged at start and on reload: did the renewed one take?). */
export interface ShownCertificate {
  readonly serial: string;
  readonly notAfter: string;
}

/**
 * Subject alternative names as Node prints them (`DNS:a, DNS:"b\u002c c", IP Address:10.0.0.1`: a
 * value with a special character is a JSON string), read whole: never split inside a value, so a
 * name holding ", DNS:other" is one odd name, not two.
 */
export function parseSubjectAltName(text: string | undefined): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  const s = text ?? "";
  let i = 0;
  while (i < s.length) {
    const colon = s.indexOf(":", i);
    if (colon < 0) break;
    const type = s.slice(i, colon).trim();
    let value: string;
    let end: number;
    if (s[colon + 1] === '"') {
      // A JSON string: up to its closing quote (a backslash escapes the next character).
      let j = colon + 2;
      while (j < s.length && s[j] !== '"') j += s[j] === "\\" ? 2 : 1;
      try {
        value = JSON.parse(s.slice(colon + 1, j + 1)) as string;
      } catch {
        return out; // not Node's format: no names from here on
      }
      end = j + 1;
    } else {
      const comma = s.indexOf(", ", colon + 1);
      end = comma < 0 ? s.length : comma;
      value = s.slice(colon + 1, end);
    }
    out.push({ type, value });
    i = s.startsWith(", ", end) ? end + 2 : end;
  }
  return out;
}

/** The names a certificate gives its holder, for messages: its DNS subject alternative names, else its CN. */
export function certificateNames(cert: X509Certificate): string[] {
  const dns = parseSubjectAltName(cert.subjectAltName).filter((n) => n.type === "DNS").map((n) => n.value);
  if (dns.length > 0) return dns;
  // The CN as checkHost reads it (the subject's CN attribute, whole, whatever it holds).
  const cn = cert.subject.split("\n").find((l) => l.startsWith("CN="));
  return cn !== undefined ? [cn.slice(3)] : [];
}

/**
 * Whether a certificate names `name`, as a host check does (RFC 6125, Node's checkHost): its DNS
 * subject alternative names, its CN only when it has none; no wildcards.
 */
export function certificateIsFor(cert: X509Certificate, name: string): boolean {
  return cert.checkHost(name, { subject: "default", wildcards: false, partialWildcards: false }) !== undefined;
}

/**
 * Mutual TLS between every child and parent: both sides show a certificate of the site CA, a parent
 * checks that the name in a child's Hello is one its certificate gives (so only a node speaks for
 * itself), and a child checks that its parent's certificate names the parent the topology says is at
 * that address. Files are read at start and again on reload (SIGHUP): new connections use the new
 * material, open ones keep theirs. Cost: a TLS handshake per connection (a child holds one or two
 * for hours) and AES-GCM per byte, no work per frame.
 */
export class TreeTls {
  private material: Material;
  /** topology address → the node (or root) there, for the name a parent's certificate must give. */
  private names = new Map<string, string>();

  constructor(
    private readonly config: TreeTlsConfig,
    /** This daemon's name: its own certificate must give it. */
    private readonly self: string,
    topology: Topology,
  ) {
    this.material = this.load();
    this.setTopology(topology);
  }

  /** Reads the files again (SIGHUP); a bad file leaves the old material in use and throws. */
  reload(): void {
    this.material = this.load();
  }

  /** The certificate new connections show. */
  get shown(): ShownCertificate {
    return this.material.shown;
  }

  setTopology(topology: Topology): void {
    const names = new Map<string, string>();
    for (const [name, n] of topology.nodes) names.set(n.address, name);
    for (const r of topology.roots) names.set(r.address, r.name);
    this.names = names;
  }

  /** What a tree port's TLS side (TlsTerminator) is made of: this daemon's certificate, and the CA its children's must be signed by. */
  contextOptions(): { ca: Buffer; cert: Buffer; key: Buffer } {
    const m = this.material;
    return { ca: m.ca, cert: m.cert, key: m.key };
  }

  /** Credentials and options for a channel to the parent at `address`. */
  channel(address: string): { credentials: grpc.ChannelCredentials; options: grpc.ChannelOptions } {
    const m = this.material;
    const name = this.names.get(address);
    return {
      credentials: grpc.credentials.createSsl(m.ca, m.key, m.cert),
      // The parent's certificate must give the name the topology has at that address.
      options: name !== undefined ? { "grpc.ssl_target_name_override": name, "grpc.default_authority": name } : {},
    };
  }

  /** Why a child's stream may not speak as `node` (its certificate names someone else), or null. */
  peerProblem(call: grpc.ServerDuplexStream<Buffer, unknown>, node: string): string | null {
    const cert = call.getAuthContext().sslPeerCertificate;
    if (cert === undefined || cert === null || Object.keys(cert).length === 0) return "no client certificate";
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert.raw);
    } catch {
      return "a client certificate that cannot be read";
    }
    if (certificateIsFor(x509, node)) return null;
    return `its certificate names ${certificateNames(x509).slice(0, 4).map((n) => (/^[\w.-]+$/.test(n) ? n : JSON.stringify(n))).join(", ") || "nobody"}, not ${node}`;
  }

  private load(): Material {
    const read = (key: keyof TreeTlsConfig): Buffer => {
      const path = this.config[key];
      try {
        return readFileSync(path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // The packaged root and relay run as user banyan: a key left root-owned 0600 is the usual cause.
        const why = code === "EACCES" ? `EACCES: ${unreadableBecause(path)} (chown it to the daemon's user, e.g. \`banyan certs --owner banyan\`, or install -o banyan -m 0600)` : (code ?? (err as Error).message);
        throw new BanyanError(Code.InvalidConfig, `tree.tls.${key}: ${path}: ${why}: expected a readable PEM file`, { cause: err });
      }
    };
    const ca = read("caFile");
    const cert = read("certFile");
    const key = read("keyFile");
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
      new X509Certificate(ca);
    } catch (err) {
      throw new BanyanError(Code.InvalidConfig, `tree.tls: ${this.config.certFile} or ${this.config.caFile}: not a PEM certificate (${(err as Error).message})`, { cause: err });
    }
    let matches = false;
    try {
      matches = x509.checkPrivateKey(createPrivateKey(key));
    } catch (err) {
      throw new BanyanError(Code.InvalidConfig, `tree.tls.keyFile: ${this.config.keyFile}: not a PEM private key (${(err as Error).message})`, { cause: err });
    }
    if (!matches) throw new BanyanError(Code.InvalidConfig, `tree.tls.keyFile: ${this.config.keyFile} is not the key of ${this.config.certFile}`);
    if (!certificateIsFor(x509, this.self)) {
      throw new BanyanError(Code.InvalidConfig, `tree.tls.certFile: ${this.config.certFile} names ${certificateNames(x509).join(", ") || "nobody"}, not this daemon (${this.self}): make it with \`banyan certs\``);
    }
    return { ca, cert, key, shown: { serial: x509.serialNumber, notAfter: new Date(x509.validTo).toISOString() } };
  }
}
