import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import type { Registry } from "prom-client";
import { EventSummary, LimitedWarning, type Logger } from "../core/logger.js";
import { counter, gauge } from "../core/metric-names.js";
import { DownSchema, type Alive, type Frame, type Up } from "../gen/banyan/v1/uplink_pb.js";
import { aliveProblem, frameProblem, isNodeName } from "./frame-envelope.js";
import type { FrameSink } from "./frame-flow.js";
import { TlsTerminator } from "./tls-terminator.js";
import { HelloWatch } from "./hello-watch.js";
import { ConnectionGate, DEFAULT_GATE, type GateOptions } from "./connection-gate.js";
import type { OriginAuthority } from "./origin-authority.js";
import type { TreeTls } from "./tree-tls.js";
import { OriginRoutes } from "./origin-routes.js";
import { widenReceiveWindow } from "./receive-window.js";
import { replacedDetails, takenDetails } from "./uplink-contract.js";
import { decodeUp, parseHostPort, shutdownServer, uplinkServiceDefinition } from "./uplink-grpc.js";
import type { WireLimits } from "./wire-limits.js";
import { heard, isOtherLiveProcess, type ChildLink, type HeldLink } from "./child-link.js";

export type { ChildLink } from "./child-link.js";

export interface ChildServerHooks {
  /** Who may speak for whom (from the topology); without it any well-formed origin passes (tests of the envelope alone). */
  authority?: OriginAuthority;
  /** A child delivered a batch (the relay may flush early when every child has). */
  onBatch?(child: ChildLink): void;
  onChildUp?(child: ChildLink): void;
  onChildDown?(child: ChildLink, reason: string): void;
  /** Bounds on the tree port's connections and streams (default: DEFAULT_TREE_PORT). */
  treePort?: Partial<TreePortOptions>;
  /** Mutual TLS: children show a certificate of the site CA that names them (default: none, an unauthenticated tree). */
  tls?: TreeTls;
}

/** Bounds on a tree port: its connections (see ConnectionGate) and the streams each may open. */
export interface TreePortOptions extends GateOptions {
  readonly maxStreamsPerConnection: number;
  /**
   * Origins one child's stream may carry. The topology bounds a node's subtree already; a cluster's
   * root at a central root names its cluster's nodes itself, and this bounds them (default 100,000).
   */
  readonly maxOriginsPerLink: number;
}

export const DEFAULT_TREE_PORT: TreePortOptions = Object.freeze({ ...DEFAULT_GATE, maxStreamsPerConnection: 1024, maxOriginsPerLink: 100_000 });

/** Streams one connection may hold before their Hello (a child's, a would-be child's probe, and room): past it a new one is refused. */
const MAX_SILENT_STREAMS = 8;

/** Acks a child has not read, at most: past it the child is closed (it would make this process queue acks without end). */
const MAX_UNREAD_ACKS = 1024;

/**
 * The child-facing side of a relay or root: accepts children's streams, checks each frame's
 * envelope (never its payload: forwarding costs bytes, not series), hands the good ones to the sink,
 * acks every batch, and learns which child each origin came through so resyncs can be routed down.
 * A bad frame is dropped with a counted reason; the other frames of the batch, and the other
 * origins behind that child, keep flowing.
 */
export class ChildServer {
  private readonly server: grpc.Server;
  private readonly gate: ConnectionGate;
  private injector: grpc.ConnectionInjector | null = null;
  /** The tree port's TLS (tree.tls), before gRPC: null on a plain tree. */
  private terminator: TlsTerminator | null = null;
  private readonly links = new Map<grpc.ServerDuplexStream<Buffer, unknown>, HeldLink>();
  /** A node's one stream here: a newer Hello from the same node replaces the older stream. */
  private readonly byNode = new Map<string, grpc.ServerDuplexStream<Buffer, unknown>>();
  private readonly routes: OriginRoutes<grpc.ServerDuplexStream<Buffer, unknown>>;
  private boundPort = 0;
  /** A misbehaving child must not flood the log: one line per second at most. */
  private readonly refused: LimitedWarning;
  private readonly namesTakenLog: LimitedWarning;
  private readonly helloWatch: HelloWatch<grpc.ServerDuplexStream<Buffer, unknown>>;
  private readonly streamsRefusedLog: LimitedWarning;
  /** Children come and go in crowds when a parent fails over: one line a second, the count and the first names. */
  private readonly connected: EventSummary;
  private readonly disconnected: EventSummary;
  private readonly summaryTimer: NodeJS.Timeout;
  private readonly m;

  constructor(
    private readonly sink: FrameSink,
    private readonly limits: WireLimits,
    log: Logger,
    registry: Registry,
    private readonly hooks: ChildServerHooks = {},
  ) {
    this.refused = new LimitedWarning(log, "frame refused");
    this.streamsRefusedLog = new LimitedWarning(log, "child stream refused");
    this.namesTakenLog = new LimitedWarning(log, "a second live process with a node's name was refused (two agents with one name?): the stream that was there stays", 60_000);
    this.connected = new EventSummary(log, "children connected");
    this.disconnected = new EventSummary(log, "children disconnected");
    this.summaryTimer = setInterval(() => this.flushLogs(), 1000);
    this.summaryTimer.unref();
    const port = { ...DEFAULT_TREE_PORT, ...hooks.treePort };
    this.routes = new OriginRoutes(port.maxOriginsPerLink);
    this.helloWatch = new HelloWatch(MAX_SILENT_STREAMS, port.handshakeTimeoutMs, (call) => {
      this.m.streamsRefused.inc();
      this.streamsRefusedLog.warn({ from: call.getPeer(), reason: `no Hello within ${port.handshakeTimeoutMs} ms: stream closed` });
      call.emit("error", { code: grpc.status.DEADLINE_EXCEEDED, details: `no Hello within ${port.handshakeTimeoutMs} ms` });
      call.end();
    });
    this.server = new grpc.Server({
      "grpc.max_receive_message_length": limits.maxMessageBytes,
      "grpc.max_send_message_length": limits.maxMessageBytes,
      "grpc.max_concurrent_streams": port.maxStreamsPerConnection,
    });
    this.gate = new ConnectionGate((socket) => (this.terminator !== null ? this.terminator.accept(socket) : this.injector?.injectConnection(socket)), port, log, registry);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the gauge as `this`
    const self = this;
    this.server.addService(uplinkServiceDefinition, { Stream: (call: grpc.ServerDuplexStream<Buffer, unknown>) => this.onStream(call) });
    this.m = {
      children: gauge(registry, "banyan_relay_children", "Child streams connected.", [], function () {
        this.set(self.links.size);
      }),
      frames: counter(registry, "banyan_relay_frames_received_total", "Frames received from children and accepted."),
      bytes: counter(registry, "banyan_relay_payload_bytes_received_total", "Frame payload bytes received from children."),
      rejected: counter(registry, "banyan_relay_frames_rejected_total", "Frames refused at the edge (bad envelope, over a limit).", ["reason"] as const),
      streamsRefused: counter(registry, "banyan_relay_streams_refused_total", "Child streams closed for a protocol error."),
      namesTaken: counter(registry, "banyan_tree_names_taken_total", "Hellos refused because another live process holds a stream for that node's name here (two agents with one name)."),
      resyncs: counter(registry, "banyan_relay_resyncs_routed_total", "Resync requests sent down to children."),
    };
  }

  /** Binds `host:port` (port 0: any free port) and returns the bound port. */
  async listen(address: string): Promise<number> {
    const { host, port } = parseHostPort(address, "listen address");
    // TLS is done here, not by grpc-js, so that a refused handshake is seen (and counted, and told).
    this.injector = this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const tls = this.hooks.tls;
    if (tls !== undefined) this.terminator = new TlsTerminator(tls.contextOptions(), (s) => this.injector?.injectConnection(s), (reason, from, detail) => this.gate.refusedHandshake(reason, from, detail));
    this.boundPort = await this.gate.listen(host, port, address);
    return this.boundPort;
  }

  /** New connections use the TLS material as it is now (after TreeTls.reload); open ones keep theirs. */
  refreshCredentials(): void {
    if (this.hooks.tls !== undefined) this.terminator?.setContext(this.hooks.tls.contextOptions());
  }

  get port(): number {
    return this.boundPort;
  }

  get children(): readonly ChildLink[] {
    return [...this.links.values()];
  }

  /** Sends a resync down toward each origin; returns the origins with no known route. */
  routeResync(origins: readonly string[]): string[] {
    const byStream = new Map<grpc.ServerDuplexStream<Buffer, unknown>, string[]>();
    const unrouted: string[] = [];
    for (const o of origins) {
      const s = this.routes.streamOf(o);
      if (s === undefined || !this.links.has(s)) {
        unrouted.push(o);
        continue;
      }
      let list = byStream.get(s);
      if (list === undefined) byStream.set(s, (list = []));
      list.push(o);
    }
    for (const [stream, list] of byStream) {
      stream.write(create(DownSchema, { msg: { case: "resync", value: { origins: list } } }));
      this.m.resyncs.inc(list.length);
    }
    return unrouted;
  }

  /**
   * The origins currently behind a connected child, with the newest epoch and sequence seen from
   * each: what this node announces as leaving when it moves to another parent.
   */
  routedOrigins(): { origin: string; epoch: bigint; seq: bigint }[] {
    const out: { origin: string; epoch: bigint; seq: bigint }[] = [];
    for (const r of this.routes.framed()) if (this.links.has(r.stream)) out.push({ origin: r.origin, epoch: r.epoch, seq: r.seq });
    return out;
  }

  private flushLogs(): void {
    this.connected.flush();
    this.disconnected.flush();
  }

  /** Stops accepting, ends every child stream, and waits for the server to close. */
  async stop(): Promise<void> {
    clearInterval(this.summaryTimer);
    this.helloWatch.stop();
    this.flushLogs();
    for (const call of this.links.keys()) call.end();
    const closed = this.gate.close();
    await shutdownServer(this.server);
    this.injector?.destroy();
    await closed;
  }

  private onStream(call: grpc.ServerDuplexStream<Buffer, unknown>): void {
    widenReceiveWindow(call);
    let link: HeldLink | null = null;
    if (!this.helloWatch.open(call, call.getPeer(), Date.now())) {
      // A connection's silent streams are capped (each held costs the parent ~7.5 KB until its Hello).
      this.m.streamsRefused.inc();
      this.streamsRefusedLog.warn({ from: call.getPeer(), reason: `over ${MAX_SILENT_STREAMS} streams on one connection without a Hello: refused` });
      call.emit("error", { code: grpc.status.RESOURCE_EXHAUSTED, details: `over ${MAX_SILENT_STREAMS} streams on one connection without a Hello` });
      call.end();
      return;
    }
    const refuse = (why: string): void => {
      this.helloWatch.settled(call);
      this.m.streamsRefused.inc();
      this.streamsRefusedLog.warn({ child: link?.node, reason: why });
      call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: why });
      call.end();
    };
    let dropped = false;
    call.on("data", (bytes: Buffer) => {
      if (dropped) return;
      if (link !== null) heard(link, Date.now());
      let up: Up;
      try {
        up = decodeUp(bytes);
      } catch (err) {
        refuse((err as Error).message);
        return;
      }
      if (up.msg.case === "hello") {
        const h = up.msg.value;
        if (link !== null) return refuse("second Hello on one stream");
        if (!isNodeName(h.node, this.limits)) return refuse(`bad node name in Hello: ${JSON.stringify(h.node.slice(0, 64))}`);
        if (this.hooks.authority !== undefined && !this.hooks.authority.knows(h.node)) return refuse(`${JSON.stringify(h.node)} is not a node of the topology`);
        const impostor = this.hooks.tls?.peerProblem(call, h.node) ?? null;
        if (impostor !== null) {
          this.gate.refusedHandshake("name_mismatch", call.getPeer(), `Hello as ${h.node}: ${impostor}`);
          return refuse(`Hello as ${h.node}: ${impostor}`);
        }
        this.helloWatch.settled(call);
        if (h.probe) {
          this.gate.admitted(call.getPeer());
          // A would-be child checks that this process answers; it does not attach.
          call.write(create(DownSchema, { msg: { case: "ack", value: { linkSeq: 0n } } }));
          call.end();
          return;
        }
        const now = Date.now();
        const older = this.byNode.get(h.node);
        const held = older !== undefined ? this.links.get(older) : undefined;
        if (held !== undefined && older !== call && isOtherLiveProcess(held, h.instance, now)) {
          // Two processes with one name: the healthy stream stays, the newcomer is told (it holds off).
          this.m.namesTaken.inc();
          this.namesTakenLog.warn({ child: h.node, from: call.getPeer(), heldSinceMs: held.connectedAtMs, ...(this.hooks.tls !== undefined ? { tls: "both show a certificate for this name: one certificate on two hosts?" } : {}) });
          call.emit("error", { code: grpc.status.ALREADY_EXISTS, details: takenDetails(h.node) });
          call.end();
          return;
        }
        this.gate.admitted(call.getPeer());
        link = { node: h.node, tree: h.tree, epoch: h.epoch, connectedAtMs: now, instance: h.instance, lastMessageMs: now, gapMs: 0 };
        if (older !== undefined && older !== call) {
          // The node reconnected (its old stream is dead but not yet timed out, or silent), or a
          // process that does not say its instance claims its name: one stream per node, so streams
          // are bounded by the topology.
          older.emit("error", { code: grpc.status.ABORTED, details: replacedDetails(h.node) });
          older.end();
        }
        this.byNode.set(h.node, call);
        this.links.set(call, link);
        this.connected.note(h.node);
        this.hooks.onChildUp?.(link);
        call.write(create(DownSchema, { msg: { case: "ack", value: { linkSeq: 0n } } }));
        return;
      }
      if (up.msg.case !== "batch") return refuse("empty Up message");
      if (link === null) return refuse("Batch before Hello");
      const b = up.msg.value;
      if (b.frames.length + b.alive.length > this.limits.maxFramesPerBatch) {
        // Refused whole; the root sees the gap in those origins' sequences and asks for keyframes.
        this.reject("batch_too_large", `${link.node}: batch of ${b.frames.length + b.alive.length} over the limit`);
      } else {
        const busy = this.forward(link, b.frames, b.alive, call);
        if (busy !== undefined) {
          // The sink takes it in slices: this link waits (its sender sees the backlog as late acks).
          call.pause();
          void busy.then(() => call.resume());
        }
      }
      call.write(create(DownSchema, { msg: { case: "ack", value: { linkSeq: b.linkSeq } } }));
      if (call.writableLength > MAX_UNREAD_ACKS) {
        // Its status could not reach it either (it would queue behind the acks): the connection goes.
        this.m.streamsRefused.inc();
        this.streamsRefusedLog.warn({ child: link.node, reason: `does not read its acks (${call.writableLength} unread): connection closed` });
        this.gate.drop(call.getPeer(), "acks_not_read");
        dropped = true;
        return;
      }
      this.hooks.onBatch?.(link);
    });
    const gone = (reason: string): void => {
      this.helloWatch.settled(call);
      const l = this.links.get(call);
      if (l === undefined) return;
      this.links.delete(call);
      if (this.byNode.get(l.node) === call) this.byNode.delete(l.node);
      this.routes.forget(call);
      this.disconnected.note(`${l.node} (${reason})`);
      this.hooks.onChildDown?.(l, reason);
    };
    call.on("end", () => {
      gone("ended");
      call.end();
    });
    // A stream replaced by a newer one of its node ends with a status object (details, no message).
    call.on("error", (err: Error & { details?: string }) => gone(err.message ?? err.details ?? "error"));
    call.on("close", () => gone("closed"));
  }

  private forward(link: ChildLink, frames: readonly Frame[], alive: readonly Alive[], call: grpc.ServerDuplexStream<Buffer, unknown>): void | Promise<void> {
    const good: Frame[] = [];
    let bytes = 0;
    for (const f of frames) {
      // Epoch 0: the child's own frame in the epoch of its Hello (see ParentStream).
      if (f.epoch === 0n && f.origin === link.node) f.epoch = link.epoch;
      const problem = frameProblem(f, this.limits);
      if (problem !== null) {
        this.reject("bad_frame", `${link.node}: ${problem}`);
        continue;
      }
      if (!this.route(link, f.origin, call)) continue;
      this.routes.saw(f.origin, f.epoch, f.seq);
      good.push(f);
      bytes += f.payload.length;
    }
    const goodAlive: Alive[] = [];
    for (const a of alive) {
      if (a.epoch === 0n && a.origin === link.node) a.epoch = link.epoch;
      const problem = aliveProblem(a, this.limits);
      if (problem !== null) {
        this.reject("bad_alive", `${link.node}: ${problem}`);
        continue;
      }
      if (!this.route(link, a.origin, call)) continue;
      goodAlive.push(a);
    }
    this.m.frames.inc(good.length);
    this.m.bytes.inc(bytes);
    if (good.length > 0 || goodAlive.length > 0) return this.sink.accept(good, goodAlive, link);
  }

  /**
   * Learns that `origin` arrives through this stream, when the link may carry it; a foreign origin
   * (another subtree's node, or none of the topology's) is refused, counted and never applied.
   */
  private route(link: ChildLink, origin: string, call: grpc.ServerDuplexStream<Buffer, unknown>): boolean {
    if (this.routes.streamOf(origin) === call) return true;
    if (this.hooks.authority !== undefined && !this.hooks.authority.carries(link.node, origin)) {
      this.reject("foreign_origin", `${link.node} may not carry ${JSON.stringify(origin)}: not in its planned subtree`);
      return false;
    }
    if (this.routes.take(origin, call)) return true;
    this.reject("too_many_origins", `${link.node} carries ${this.routes.maxPerStream} origins already (tree.maxOriginsPerLink)`);
    return false;
  }

  private reject(reason: string, detail: string): void {
    this.m.rejected.inc({ reason });
    this.refused.warn({ reason, detail });
  }
}
