import type * as net from "node:net";
import * as tls from "node:tls";
import { handshakeRefusal, type HandshakeRefusal } from "./handshake-refusal.js";

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
