import t from "tap";
import { clientHandshakeRefusal, handshakeRefusal } from "../../../src/wire/handshake-refusal.js";

const err = (code: string, message = ""): Error => Object.assign(new Error(message), { code });

t.test("handshake refusals - a parent's TLS errors by reason (OpenSSL's codes as Node gives them)", async (t) => {
  t.equal(handshakeRefusal(err("ERR_SSL_WRONG_VERSION_NUMBER")), "plaintext", "an HTTP/2 preface where a ClientHello should be");
  t.equal(handshakeRefusal(err("ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE")), "no_certificate");
  t.equal(handshakeRefusal(err("UNABLE_TO_VERIFY_LEAF_SIGNATURE")), "unknown_ca");
  t.equal(handshakeRefusal(err("ERR_SSL_EVP_LIB", "error:06880006:asn1 encoding routines:ASN1_item_verify_ctx:EVP lib")), "unknown_ca", "another CA of the same name: the signature check fails");
  t.equal(handshakeRefusal(err("ERR_SSL_EVP_LIB", "something else")), "other");
  t.equal(handshakeRefusal(err("CERT_HAS_EXPIRED")), "expired");
  t.equal(handshakeRefusal(err("ERR_SSL_TLSV1_ALERT_UNKNOWN_CA")), "refused_by_peer", "the child refused this daemon's certificate");
  t.equal(handshakeRefusal(null), "other");
});

t.test("handshake refusals - a child's, from grpc-js' error text; a parent that is down is no refusal", async (t) => {
  const last = (e: string): string => `r1: stream error: No connection established. Last error: Error: ${e}. Resolution note: `;
  t.equal(clientHandshakeRefusal(last("certificate signature failure")), "unknown_ca");
  t.equal(clientHandshakeRefusal(last("809CE64D6D7F0000:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl3_record.c:350:\n")), "plaintext", "the parent speaks without TLS");
  t.equal(clientHandshakeRefusal(last("Hostname/IP does not match certificate's altnames: Host: r2. is not in the cert's altnames: DNS:r1")), "name_mismatch");
  t.equal(clientHandshakeRefusal(last("certificate has expired")), "expired");
  t.equal(clientHandshakeRefusal(last("C0:error:0A00045C:SSL routines::tlsv13 alert certificate required")), "refused_by_peer");
  t.equal(clientHandshakeRefusal("r1: stream error: No connection established. Last error: Failed to connect (2026-12-07T19:37:29.698Z)."), null);
  t.equal(clientHandshakeRefusal("no answer from r1 within 5000 ms"), null);
});
