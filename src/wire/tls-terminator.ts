import type * as net from "node:net";
import * as tls from "node:tls";
import type { Counter, Registry } from "prom-client";
import { counter } from "../core/metric-names.js";

/** Why a tree connection's TLS handshake, or its certificate's name, was refused (the `reason` label). */
export type HandshakeRefusal = "plaintext" | "no_certificate" | "unknown_ca" | "expired" | "name_mismatch" | "refused_by_peer" | "other";

/** What each refusal tells an administrator to look at (logged with it). */
export const REFUSAL_HINT: Readonly<Record<HandshakeRefusal, string>> = {
  plaintext: "the peer speaks without TLS: give it tree.tls (caFile, certFile, keyFile)",
  no_certificate: "the peer showed no certificate: give it tree.tls.certFile and keyFile",
  unknown_ca: "the peer's certificate is not signed by this daemon's tree.tls.caFile (another site CA?)",
  expired: "the peer's certificate has expired or is not valid yet (renew it: banyan certs --names <it> --force)",
  name_mismatch: "the peer's certificate names another node than the one its Hello claims",
  refused_by_peer: "the peer refused this daemon's certificate, or closed mid-handshake (its caFile is another CA's?)",
  other: "the TLS handshake failed",
};

const PLAINTEXT = new Set(["ERR_SSL_WRONG_VERSION_NUMBER", "ERR_SSL_HTTP_REQUEST", "ERR_SSL_PACKET_LENGTH_TOO_LONG", "ERR_SSL_RECORD_LAYER_FAILURE"]);
const UNKNOWN_CA = new Set(["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "SELF_SIGNED_CERT_IN_CHAIN", "DEPTH_ZERO_SELF_SIGNED_CERT", "CERT_SIGNATURE_FAILURE", "CERT_UNTRUSTED", "CERT_REJECTED"]);
const EXPIRED = new Set(["CERT_HAS_EXPIRED", "CERT_NOT_YET_VALID"]);

/** The refusal an error of a server-side handshake stands for (OpenSSL's codes, as Node gives them). */
export function handshakeRefusal(err: unknown): HandshakeRefusal {
  const code = String((err as NodeJS.ErrnoException | null)?.code ?? "");
  if (PLAINTEXT.has(code)) return "plaintext";
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") return "no_certificate";
  // A certificate of another CA of the same name (two runs of `banyan certs`) fails the signature check itself: ASN1_item_verify.
  if (UNKNOWN_CA.has(code) || code === "ERR_SSL_CERTIFICATE_VERIFY_FAILED" || (code === "ERR_SSL_EVP_LIB" && /verify/i.test(String((err as Error).message)))) return "unknown_ca";
  if (EXPIRED.has(code)) return "expired";
  // An alert the peer sent: it refused what this daemon showed.
  if (/^ERR_SSL_(TLSV1|TLSV13|SSLV3)_ALERT_/.test(code)) return "refused_by_peer";
  return "other";
}

/**
 * The refusal a child's failed connection to its parent stands for, from grpc-js' error text (it
 * keeps OpenSSL's code to itself); null when it was no TLS refusal (the parent is down, say). A
 * child without TLS dialling a TLS parent sees only "Failed to connect": the parent counts that one.
 */
export function clientHandshakeRefusal(details: string): HandshakeRefusal | null {
  if (/wrong version number|packet length too long|http request/i.test(details)) return "plaintext";
  if (/Hostname\/IP does not match|altnames/i.test(details)) return "name_mismatch";
  if (/certificate has expired|certificate is not yet valid/i.test(details)) return "expired";
  if (/alert (certificate required|unknown ca|bad certificate|certificate unknown|decrypt error)/i.test(details)) return "refused_by_peer";
  if (/certificate signature failure|unable to verify|unable to get (local )?issuer|self[- ]signed certificate|certificate verify failed/i.test(details)) return "unknown_ca";
  return null;
}

/** `banyan_tree_handshakes_refused_total{reason}`: a parent counts the handshakes it refused, a child those its parent's refused or it refused (one counter in a relay, which is both). */
export function handshakeRefusals(registry: Registry): Counter<"reason"> {
  return counter(registry, "banyan_tree_handshakes_refused_total", "Tree TLS handshakes refused, by reason: plaintext, no_certificate, unknown_ca, expired, name_mismatch (a certificate naming another node than the Hello, or a parent than the topology), refused_by_peer, other.", ["reason"] as const);
}

/**
 * The TLS side of a tree port: a `tls.Server` that never listens, handed the connections the gate
 * admits. It asks every peer for a certificate of the site CA and refuses the handshake otherwise
 * (a refusal is told with its reason and the peer's address, which grpc-js, when it did TLS itself,
 * kept to itself: a node without TLS only ever showed as down); a connection that completes it goes
 * on, decrypted, to gRPC. New certificates (a reload) apply to new connections.
 */
export class TlsTerminator {
  private readonly server: tls.Server;

  constructor(
    context: tls.SecureContextOptions,
    onSecure: (socket: tls.TLSSocket) => void,
    onRefused: (reason: HandshakeRefusal, address: string, detail: string) => void,
  ) {
    // h2 is what every gRPC client asks for; without it a client refuses the connection.
    this.server = tls.createServer({ ...context, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ["h2"] }, onSecure);
    this.server.on("tlsClientError", (err, socket) => {
      // Closed before a byte of the handshake came (a probe, a port scan): nothing was refused.
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ECONNRESET" && socket.bytesRead === 0) return;
      // A Node or grpc-js child that refuses the parent's certificate closes without an alert, mid-handshake.
      const reason = code === "ECONNRESET" ? "refused_by_peer" : handshakeRefusal(err);
      onRefused(reason, socket.remoteAddress ?? "unknown", code ?? err.message);
      socket.destroy();
    });
  }

  /** Starts the handshake on an admitted connection. */
  accept(socket: net.Socket): void {
    this.server.emit("connection", socket);
  }

  /** The certificate and CA new handshakes use (open connections keep theirs). */
  setContext(context: tls.SecureContextOptions): void {
    this.server.setSecureContext(context);
  }
}
