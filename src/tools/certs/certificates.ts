import "reflect-metadata";
import { X509Certificate, webcrypto } from "node:crypto";
import { chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as x509 from "@peculiar/x509";
import { expandHostlist } from "../../topology/hostlist.js";
import { readTopologyFile } from "../../topology/topology-file.js";
import { BanyanError, Code } from "../../core/errors.js";
import { parseOwner } from "../../core/unix-accounts.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
type CryptoKey = webcrypto.CryptoKey;

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

export interface CertsFlags {
  topology: string;
  out: string;
  caCert?: string;
  caKey?: string;
  days: string;
  names?: string;
  force?: boolean;
  /** `USER[:GROUP]`: the certificates and keys made belong to them (the CA's key stays this user's). */
  owner?: string;
}

/** The PEM of a private key (PKCS #8). */
async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n?$/, "\n")}-----END PRIVATE KEY-----\n`;
}

async function importKeyPem(pem: string, path: string): Promise<CryptoKey> {
  const m = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
  if (m === null) throw new BanyanError(Code.InvalidConfig, `--ca-key ${path}: expected a PKCS #8 PEM key (BEGIN PRIVATE KEY; convert with openssl pkcs8 -topk8 -nocrypt)`);
  try {
    return await webcrypto.subtle.importKey("pkcs8", Buffer.from(m[1]!.replace(/\s+/g, ""), "base64"), ALG, true, ["sign"]);
  } catch (err) {
    throw new BanyanError(Code.InvalidConfig, `--ca-key ${path}: not an ECDSA P-256 key (${(err as Error).message})`);
  }
}

/** The site CA: the one given, the one already in `out`, or a new one (ca.crt, ca.key). */
async function siteCa(flags: CertsFlags, days: number): Promise<{ cert: x509.X509Certificate; key: CryptoKey; made: boolean; path: string }> {
  const certPath = flags.caCert ?? join(flags.out, "ca.crt");
  const keyPath = flags.caKey ?? join(flags.out, "ca.key");
  if (existsSync(certPath) || flags.caCert !== undefined) {
    let pem: string;
    try {
      pem = readFileSync(certPath, "utf8");
    } catch (err) {
      throw new BanyanError(Code.InvalidConfig, `--ca-cert ${certPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return { cert: new x509.X509Certificate(pem), key: await importKeyPem(readFileSync(keyPath, "utf8"), keyPath), made: false, path: certPath };
  }
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: "CN=Banyan tree CA",
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + Math.max(days, 3650) * DAY_MS),
    keys,
    signingAlgorithm: ALG,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  writeFileSync(certPath, cert.toString("pem") + "\n", { mode: 0o644 });
  writeFileSync(keyPath, await keyPem(keys.privateKey), { mode: 0o600 });
  return { cert, key: keys.privateKey, made: true, path: certPath };
}

const serial = (): string => Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString("hex").replace(/^[89a-f]/, "1");

/** One daemon's certificate: its name as DNS name (what the tree checks), and its topology address' host. */
async function issue(name: string, address: string, ca: { cert: x509.X509Certificate; key: CryptoKey }, days: number): Promise<{ cert: string; key: string }> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ["sign", "verify"]);
  const host = /^\[?(.*?)\]?:\d+$/.exec(address)?.[1] ?? address;
  const alt: x509.JsonGeneralName[] = [{ type: "dns", value: name }];
  if (/^[\d.]+$/.test(host) || host.includes(":")) alt.push({ type: "ip", value: host });
  else if (host !== name) alt.push({ type: "dns", value: host });
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${name}`,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + days * DAY_MS),
    signingKey: ca.key,
    publicKey: keys.publicKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.SubjectAlternativeNameExtension(alt),
      // Each daemon is a server to its children and a client of its parent.
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.BasicConstraintsExtension(false, undefined, true),
    ],
  });
  return { cert: cert.toString("pem") + "\n", key: await keyPem(keys.privateKey) };
}

/** What `banyan certs` does (also for tests): the CA, then a certificate per name that has none. */
export async function makeCertificates(flags: CertsFlags): Promise<{ caPath: string; caMade: boolean; made: number; kept: number }> {
  const days = Number(flags.days);
  if (!Number.isInteger(days) || days <= 0) throw new BanyanError(Code.InvalidConfig, `--days ${flags.days}: expected a positive whole number of days`);
  if ((flags.caCert === undefined) !== (flags.caKey === undefined)) throw new BanyanError(Code.InvalidConfig, "--ca-cert and --ca-key go together");
  const owner = flags.owner === undefined ? null : parseOwner(flags.owner);
  if (owner !== null && "error" in owner) throw new BanyanError(Code.InvalidConfig, `--owner ${flags.owner}: ${owner.error}`);
  const topology = readTopologyFile(flags.topology);
  mkdirSync(flags.out, { recursive: true, mode: 0o755 });
  const ca = await siteCa(flags, days);
  const all = new Map<string, string>();
  for (const [name, n] of topology.nodes) all.set(name, n.address);
  for (const r of topology.roots) all.set(r.name, r.address);
  const only = flags.names === undefined ? null : new Set(expandHostlist(flags.names, "--names"));
  if (only !== null) for (const n of only) if (!all.has(n)) throw new BanyanError(Code.InvalidConfig, `--names: ${n} is not a node or root of ${flags.topology}`);
  let made = 0;
  let kept = 0;
  for (const [name, address] of all) {
    if (only !== null && !only.has(name)) continue;
    const crt = join(flags.out, `${name}.crt`);
    const keyPath = join(flags.out, `${name}.key`);
    if (!flags.force && existsSync(crt)) {
      // Kept, and given to --owner too: running again with --owner fixes the files of a first run.
      if (owner !== null) for (const f of [keyPath, crt]) if (existsSync(f)) chownSync(f, owner.uid, owner.gid);
      kept++;
      continue;
    }
    const { cert, key } = await issue(name, address, ca, days);
    writeFileSync(keyPath, key, { mode: 0o600 });
    writeFileSync(crt, cert, { mode: 0o644 });
    if (owner !== null) for (const f of [keyPath, crt]) chownSync(f, owner.uid, owner.gid);
    made++;
    if (made % 1000 === 0) process.stderr.write(`${made} certificates…\n`);
  }
  // A last look that what was written is what the daemons will read.
  new X509Certificate(readFileSync(ca.path));
  return { caPath: ca.path, caMade: ca.made, made, kept };
}
