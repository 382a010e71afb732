import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { z } from "zod";
import type { Topology } from "../../topology/topology-file.js";
import { BanyanError, Code } from "../core/errors.js";
import { unreadableBecause } from "../core/unix-accounts.js";

/** `tree.tls` in every daemon's config: the site CA and this daemon's own certificate and key (PEM). */
export const treeTlsSchema = z.strictObject({
  caFile: z.string().min(1),
  certFile: z.string().min(1),
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

/** The names a certificate gives its holder: its DNS subject alternative names, then its CN. */
export function certificateNames(subjectAltName: string | undefined, subject: string | undefined): string[] {
  const names: string[] = [];
  for (const part of (subjectAltName ?? "").split(",")) {
    const m = /^\s*DNS:(.+?)\s*$/.exec(part);
    if (m !== null) names.push(m[1]!);
  }
  const cn = /(?:^|\n|,\s*)CN=([^\n,]+)/.exec(subject ?? "")?.[1];
  if (cn !== undefined && !names.includes(cn)) names.push(cn);
  return names;
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

  serverCredentials(): grpc.ServerCredentials {
    const m = this.material;
    return grpc.ServerCredentials.createSsl(m.ca, [{ cert_chain: m.cert, private_key: m.key }], true);
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
    const names = certificateNames(cert.subjectaltname, typeof cert.subject === "object" ? `CN=${cert.subject.CN ?? ""}` : undefined);
    return names.includes(node) ? null : `its certificate names ${names.slice(0, 4).join(", ") || "nobody"}, not ${node}`;
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
    const names = certificateNames(x509.subjectAltName, x509.subject);
    if (!names.includes(this.self)) {
      throw new BanyanError(Code.InvalidConfig, `tree.tls.certFile: ${this.config.certFile} names ${names.join(", ") || "nobody"}, not this daemon (${this.self}): make it with \`banyan certs\``);
    }
    return { ca, cert, key, shown: { serial: x509.serialNumber, notAfter: new Date(x509.validTo).toISOString() } };
  }
}
