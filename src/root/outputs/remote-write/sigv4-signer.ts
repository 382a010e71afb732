import { createHash, createHmac, type Hash, type Hmac } from "node:crypto";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import { SignatureV4 } from "@smithy/signature-v4";

export interface SigV4Config {
  readonly region: string;
  /** Static keys; without them the standard AWS credential chain (environment, ~/.aws profiles, role_arn in a profile, web identity, ECS, instance metadata). */
  readonly accessKey?: string | undefined;
  readonly secretKey?: string | undefined;
  /** The profile of ~/.aws/config to take credentials (or a role) from. */
  readonly profile?: string | undefined;
  /** Amazon Managed Prometheus is "aps". */
  readonly service: string;
}

const bytesOf = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === "string" ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** node:crypto behind the signer's checksum interface (SHA-256, or HMAC-SHA256 when given a key). */
class NodeSha256 {
  private readonly h: Hash | Hmac;

  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash("sha256") : createHmac("sha256", bytesOf(secret));
  }

  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytesOf(data));
  }

  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.h.digest());
  }

  reset(): void {
    throw new Error("not used by the signer");
  }
}

/**
 * AWS Signature Version 4 for remote_write (what Amazon Managed Prometheus requires), with AWS's own
 * signer (@smithy/signature-v4, checked against AWS's published test vectors in the tests) and its
 * credential chain (@aws-sdk/credential-provider-node: it refreshes expiring credentials itself).
 */
export class SigV4Signer {
  private readonly signer: SignatureV4;

  constructor(config: SigV4Config) {
    const credentials =
      config.accessKey !== undefined && config.secretKey !== undefined
        ? { accessKeyId: config.accessKey, secretAccessKey: config.secretKey }
        : defaultProvider(config.profile !== undefined ? { profile: config.profile } : {});
    this.signer = new SignatureV4({ credentials, region: config.region, service: config.service, sha256: NodeSha256, uriEscapePath: true, applyChecksum: false });
  }

  /** The headers to add to a request (authorization, x-amz-date, x-amz-security-token); the body is hashed into the signature, not sent as a header (as Prometheus signs for AMP). */
  async sign(method: string, url: URL, headers: Readonly<Record<string, string>>, body: Uint8Array | undefined, signingDate?: Date): Promise<Record<string, string>> {
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const lower: Record<string, string> = { host: url.host };
    for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== "content-length") lower[k.toLowerCase()] = v;
    const signed = await this.signer.sign(
      { method, protocol: url.protocol, hostname: url.hostname, ...(url.port ? { port: Number(url.port) } : {}), path: url.pathname, query, headers: lower, ...(body !== undefined ? { body } : {}) },
      signingDate !== undefined ? { signingDate } : {},
    );
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers)) if (k.startsWith("x-amz-") || k === "authorization") out[k] = v;
    return out;
  }
}
