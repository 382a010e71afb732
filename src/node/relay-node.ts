import type { Registry } from "prom-client";
import type { Logger } from "../core/logger.js";
import { create } from "@bufbuild/protobuf";
import { Codec, FrameKind, FrameSchema, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";
import type { Downlink, FrameSink } from "../wire/frame-flow.js";
import { GrpcParentProbe, type ParentProbe } from "../wire/parent-probe.js";
import type { UplinkState, UplinkTarget } from "../wire/uplink-contract.js";
import { UplinkSession } from "../wire/uplink-session.js";
import type { WireLimits } from "../wire/wire-limits.js";
import type { OriginAuthority } from "../wire/origin-authority.js";
import type { TreeTls } from "../wire/tree-tls.js";
import { ChildServer, type ChildLink, type TreePortOptions } from "../wire/child-server.js";
import { connectTimeoutMs, handoverMs } from "../wire/tree-timing.js";

/** The node's own sampler, as the relay sees it (implemented by the Sampler every node runs). */
export interface LocalOrigin {
  readonly origin: string;
  readonly epoch: bigint;
  /** Sequence number of the last frame sent. */
  readonly seq: bigint;
  newEpoch(): bigint;
  requestKeyframe(): void;
}

export interface RelayNodeOptions {
  readonly name: string;
  readonly tree: number;
  /** The planned parent, then the fallbacks, in order (from the topology). */
  readonly chain: readonly UplinkTarget[];
  /** Where children connect; null for a leaf (no server at all). */
  readonly listen: string | null;
  /** Children the topology plans: the relay flushes early once each has delivered its tick. */
  readonly plannedChildren: readonly string[];
  readonly intervalMs: number;
  readonly flushMs: number;
  readonly ackTimeoutMs: number;
  readonly maxQueuedFrames: number;
  /** The planned parent must answer this long before the node moves back to it. */
  readonly healAfterMs: number;
  readonly limits: WireLimits;
  /** Who may speak for whom: each child only for its planned subtree. */
  readonly authority?: OriginAuthority;
  /** Bounds on the tree port (default: DEFAULT_TREE_PORT). */
  readonly treePort?: TreePortOptions;
  /** Mutual TLS with children and parents (default: none). */
  readonly tls?: TreeTls;
}

/**
 * A node in the trees: its own frames (if it samples) and its children's go up one uplink. Resyncs
 * coming down are routed to the child each origin came through, or to the local sampler. Frames
 * dropped on overflow are repaired by the root: it sees the gap and asks for keyframes under its one
 * budget (each relay asking on its own made 6.4 GB of keyframes in a 20,000-node start on 2 cores).
 * The batch toward the parent leaves every `flushMs`, or as soon as every connected child and the node itself delivered this
 * tick, so a sample reaches the root in about depth × flush.
 */
export class RelayNode implements FrameSink, Downlink {
  readonly uplink: UplinkSession;
  private server: ChildServer | null = null;
  private local: LocalOrigin | null = null;
  private relayEpoch = BigInt(Date.now());
  private readonly delivered = new Set<string>();
  private localDelivered = false;

  constructor(
    private readonly opts: RelayNodeOptions,
    private readonly log: Logger,
    private readonly registry: Registry,
    private readonly onUplinkState?: (state: UplinkState, target: UplinkTarget) => void,
    prober: ParentProbe = new GrpcParentProbe(opts.name, opts.tree, opts.tls),
  ) {
    this.uplink = new UplinkSession(
      opts.chain,
      {
        hello: () => ({ node: opts.name, tree: opts.tree, epoch: this.local !== null ? this.local.newEpoch() : ++this.relayEpoch }),
        onResync: (origins) => this.resync(origins),
        leaving: () => this.leaveFrames(),
        onState: (state, target) => this.onUplinkState?.(state, target),
      },
      {
        flushMs: opts.flushMs,
        maxQueuedFrames: opts.maxQueuedFrames,
        ackTimeoutMs: opts.ackTimeoutMs,
        connectTimeoutMs: connectTimeoutMs(opts.intervalMs, opts.ackTimeoutMs),
        healAfterMs: opts.healAfterMs,
        probeIntervalMs: Math.min(1000, opts.intervalMs),
        handoverMs: handoverMs(opts.intervalMs),
        limits: opts.limits,
        ...(opts.tls !== undefined ? { tls: opts.tls } : {}),
      },
      prober,
      log,
      registry,
    );
  }

  /** Attaches the node's own sampler (an agent); a dedicated relay has none. */
  attachLocal(local: LocalOrigin): void {
    this.local = local;
  }

  /** Listens for children (when the topology gives any) and connects up. Returns the bound port or 0. */
  async start(): Promise<number> {
    let port = 0;
    if (this.opts.listen !== null) {
      this.server = new ChildServer(this, this.opts.limits, this.log.child({ part: "children" }), this.registry, {
        ...(this.opts.authority !== undefined ? { authority: this.opts.authority } : {}),
        ...(this.opts.treePort !== undefined ? { treePort: this.opts.treePort } : {}),
        ...(this.opts.tls !== undefined ? { tls: this.opts.tls } : {}),
        onBatch: (child) => this.childDelivered(child),
      });
      port = await this.server.listen(this.opts.listen);
    }
    this.uplink.start();
    return port;
  }

  /** New tree connections use the TLS material as it is now (after TreeTls.reload). */
  refreshTls(): void {
    this.server?.refreshCredentials();
  }

  get children(): readonly ChildLink[] {
    return this.server?.children ?? [];
  }

  /**
   * Frames from children (through the child server) and from the local sampler. A leaf's own frames
   * leave at once in localTick, right after: no flush timer for them.
   */
  accept(frames: readonly Frame[], alive: readonly Alive[]): void {
    if (this.local !== null && this.children.length === 0) this.uplink.enqueue(frames, alive);
    else this.uplink.accept(frames, alive);
  }

  /** The local sampler finished its tick. */
  localTick(): void {
    this.localDelivered = true;
    this.maybeFlush();
  }

  resync(origins: readonly string[]): void {
    const below: string[] = [];
    for (const o of origins) {
      if (this.local !== null && o === this.local.origin) this.local.requestKeyframe();
      else below.push(o);
    }
    if (below.length === 0) return;
    const unrouted = this.server?.routeResync(below) ?? below;
    if (unrouted.length > 0) this.log.debug({ origins: unrouted.slice(0, 10), count: unrouted.length }, "resync for origins with no route here");
  }

  async stop(drainMs = 1000): Promise<void> {
    await this.server?.stop();
    await this.uplink.close(drainMs);
  }

  /** LEAVE frames for this node and every origin behind it: sent on the old path before a move. */
  private leaveFrames(): Frame[] {
    const leave = (origin: string, epoch: bigint, seq: bigint): Frame =>
      create(FrameSchema, { origin, epoch, seq, timeMs: BigInt(Date.now()), kind: FrameKind.LEAVE, codec: Codec.MSGPACK, payload: new Uint8Array() });
    const out: Frame[] = [];
    if (this.local !== null) out.push(leave(this.local.origin, this.local.epoch, this.local.seq));
    for (const o of this.server?.routedOrigins() ?? []) out.push(leave(o.origin, o.epoch, o.seq));
    return out;
  }

  private childDelivered(child: ChildLink): void {
    this.delivered.add(child.node);
    this.maybeFlush();
  }

  private maybeFlush(): void {
    if (this.local !== null && !this.localDelivered) return;
    for (const c of this.children) if (!this.delivered.has(c.node)) return;
    this.delivered.clear();
    this.localDelivered = false;
    this.uplink.flushNow();
  }
}
