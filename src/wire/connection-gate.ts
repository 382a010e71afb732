import * as net from "node:net";
import type { Registry } from "prom-client";
import { BanyanError, Code } from "../core/errors.js";
import { LimitedWarning, type Logger } from "../core/logger.js";
import { counter, gauge } from "../core/metric-names.js";
import { REFUSAL_HINT, handshakeRefusals, type HandshakeRefusal } from "./handshake-refusal.js";

/** Bounds on the connections of a tree port (`tree.*` in the configs). */
export interface GateOptions {
  /** Connections held at most, all peers together. */
  readonly maxConnections: number;
  /** Connections held at most from one address. */
  readonly maxConnectionsPerAddress: number;
  /** A connection that has not said Hello on a stream this long after it opened is closed. */
  readonly handshakeTimeoutMs: number;
}

export const DEFAULT_GATE: GateOptions = Object.freeze({ maxConnections: 4096, maxConnectionsPerAddress: 256, handshakeTimeoutMs: 10_000 });

interface Held {
  readonly socket: net.Socket;
  readonly address: string;
  timer: NodeJS.Timeout | null;
}

/**
 * The TCP side of a tree port, in front of gRPC: it accepts connections itself, refuses those past
 * the caps (total, per address), and closes any that has not said Hello within the handshake
 * timeout (before, idle connections that never sent the HTTP/2 preface were held forever, and at the
 * fd limit a failing-over child or a scrape was refused). What it admits it hands to gRPC (through
 * grpc-js' connection injector, so TLS, when configured, happens there). Cost: one map entry and one
 * timer per connection until its Hello.
 */
export class ConnectionGate {
  private readonly server: net.Server;
  /** "address:port" as grpc-js' getPeer says it → the connection. */
  private readonly held = new Map<string, Held>();
  private readonly perAddress = new Map<string, number>();
  private readonly refusedLog: LimitedWarning;
  private readonly handshakeLog: LimitedWarning;
  private readonly m;

  constructor(
    private readonly inject: (socket: net.Socket) => void,
    private readonly opts: GateOptions,
    log: Logger,
    registry: Registry,
  ) {
    this.refusedLog = new LimitedWarning(log, "tree connection refused");
    // One line per 10 s at most whatever the peers do; the count by reason is in the counter.
    this.handshakeLog = new LimitedWarning(log, "tree handshake refused", 10_000);
    this.server = net.createServer({ pauseOnConnect: false }, (socket) => this.onConnection(socket));
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const self = this;
    this.m = {
      open: gauge(registry, "banyan_tree_connections", "TCP connections held on the tree port.", [], function () {
        this.set(self.held.size);
      }),
      refused: counter(registry, "banyan_tree_connections_refused_total", "Tree-port connections refused or closed: over a cap, no Hello in time, or acks not read.", ["reason"] as const),
      handshakes: handshakeRefusals(registry),
    };
  }

  /** Binds host:port (port 0: any free port) and returns the bound port. */
  listen(host: string, port: number, what: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(
          new BanyanError(
            Code.InvalidConfig,
            `cannot listen on ${what}: ${err.code === "EADDRINUSE" ? "address already in use (another daemon of this topology on this host?)" : err.code === "EADDRNOTAVAIL" ? `${host} is not an address of this host` : err.message}`,
            { cause: err },
          ),
        );
      this.server.once("error", onError);
      this.server.listen({ host: host.replace(/^\[(.*)\]$/, "$1"), port }, () => {
        this.server.off("error", onError);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** The stream from `peer` (grpc-js' getPeer) said Hello: its connection is past the handshake. */
  admitted(peer: string): void {
    const h = this.held.get(peer);
    if (h !== undefined && h.timer !== null) {
      clearTimeout(h.timer);
      h.timer = null;
    }
  }

  /** A handshake from `address` was refused: counted by reason, logged (rate-limited) with what to look at. */
  refusedHandshake(reason: HandshakeRefusal, address: string, detail: string): void {
    this.m.handshakes.inc({ reason });
    this.handshakeLog.warn({ from: address, reason, detail: detail.slice(0, 200), hint: REFUSAL_HINT[reason] });
  }

  /** Closes the connection a stream came on (a child that would make this process queue without end). */
  drop(peer: string, reason: string): void {
    const h = this.held.get(peer);
    if (h === undefined) return;
    this.m.refused.inc({ reason });
    h.socket.destroy();
  }

  /** Stops accepting and closes every connection. */
  close(): Promise<void> {
    for (const h of this.held.values()) h.socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const address = socket.remoteAddress ?? "unknown";
    const key = `${address}:${socket.remotePort ?? 0}`;
    const fromThere = this.perAddress.get(address) ?? 0;
    const why =
      this.held.size >= this.opts.maxConnections ? "too_many" : fromThere >= this.opts.maxConnectionsPerAddress ? "too_many_from_address" : null;
    if (why !== null) {
      this.m.refused.inc({ reason: why });
      this.refusedLog.warn({ from: address, reason: why, held: this.held.size, fromAddress: fromThere });
      socket.destroy();
      return;
    }
    const h: Held = { socket, address, timer: null };
    h.timer = setTimeout(() => {
      this.m.refused.inc({ reason: "handshake_timeout" });
      this.refusedLog.warn({ from: address, reason: "handshake_timeout", afterMs: this.opts.handshakeTimeoutMs });
      socket.destroy();
    }, this.opts.handshakeTimeoutMs);
    h.timer.unref();
    this.held.set(key, h);
    this.perAddress.set(address, fromThere + 1);
    socket.once("close", () => {
      if (h.timer !== null) clearTimeout(h.timer);
      if (this.held.get(key) === h) this.held.delete(key);
      const n = (this.perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, n);
    });
    // An error on a connection is the connection's end, never the daemon's.
    socket.on("error", () => undefined);
    this.inject(socket);
  }
}
