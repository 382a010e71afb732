import type { Counter, Registry } from "prom-client";
import { counter } from "../core/metric-names.js";

// Why a tree handshake was refused, read from what TLS says on either side, and where it is counted.

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
