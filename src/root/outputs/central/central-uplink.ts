import { create } from "@bufbuild/protobuf";
import type { Registry } from "prom-client";
import { nodeRecord } from "../../../topology/topology-lookup.js";
import type { Topology } from "../../../topology/topology-file.js";
import { BanyanError, Code } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { counter, gauge } from "../../../core/metric-names.js";
import { Codec, FrameKind, FrameSchema, type Alive, type Frame } from "../../../gen/banyan/v1/uplink_pb.js";
import type { AppliedFrame } from "../../../series/delta-decoder.js";
import { aliveRecord } from "../../../wire/frame-flow.js";
import { GrpcParentProbe } from "../../../wire/parent-probe.js";
import { chainOf } from "../../../node/node-daemon.js";
import { TreeTls, type TreeTlsConfig } from "../../../wire/tree-tls.js";
import { UplinkSession } from "../../../wire/uplink-session.js";
import type { WireLimits } from "../../../wire/wire-limits.js";
import { encodeEvents, MAX_EVENTS_PER_FRAME } from "../../events/event-frames.js";
import type { EventLog, RootEvent } from "../../events/event-log.js";
import { clusterOrigin } from "../../exposition/origin-identity.js";
import type { AggregatesView, HiddenReason, OriginView, OutputView, RootOutput } from "../root-output.js";
import type { CentralConfig } from "./central-config.js";
import { ForwardFilter } from "./forward-filter.js";
import { ForwardedOrigin, freshSeq } from "./forwarded-origin.js";
import { SummaryOrigin, type RootSummary } from "./summary-origin.js";

/** What the central uplink reads of its root besides the applied frames. */
export interface CentralSources {
  readonly rootName: string;
  readonly intervalMs: number;
  readonly limits: WireLimits;
  /** tree.tls of the root: its identity toward the central roots unless central.tls names another. */
  readonly treeTls?: TreeTlsConfig;
  summary(): RootSummary;
  aggregates(): AggregatesView;
  readonly events: EventLog;
}

/** Events waiting for the next tick, at most (a burst past it loses its oldest, counted). */
const MAX_PENDING_EVENTS = 10_000;

/**
 * A cluster's root as a child of a central Banyan: the same Uplink protocol and session as a node
 * (fallback chain, failover, healing, bounded queue, resyncs from above), carrying
 * - each node's series that `forward` allows, as origin `<cluster>/<node>` (ForwardedOrigin);
 * - the root's summary, and its aggregates unless the filter sends no series (SummaryOrigin);
 * - its events, in EVENTS frames, unless `forward.events` is false.
 * What the filter refuses never leaves the cluster. Cost at the root: per applied frame of a
 * forwarded node, its changed ids re-encoded; per tick, an alive record per quiet forwarded node.
 */
export class CentralUplink implements RootOutput {
  readonly name = "central";
  readonly cluster: string;
  private readonly centralName: string;
  private readonly filter: ForwardFilter;
  private readonly session: UplinkSession;
  private readonly forwarded = new Map<OriginView, ForwardedOrigin>();
  private readonly byWire = new Map<string, OriginView>();
  private readonly summary: SummaryOrigin;
  private eventsSeq = freshSeq();
  private pending: RootEvent[] = [];
  private unsubscribe: (() => void) | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private linkEpoch = BigInt(Date.now());
  private readonly m;

  constructor(
    private readonly config: CentralConfig,
    topology: Topology,
    private readonly src: CentralSources,
    log: Logger,
    registry: Registry,
  ) {
    this.centralName = config.name ?? src.rootName;
    const rec = nodeRecord(topology, this.centralName, config.topology);
    if (rec.cluster === undefined) throw new BanyanError(Code.InvalidConfig, `central.name: ${this.centralName} is not a cluster's root in ${config.topology} (its record has no "cluster": make the file with banyan topology central)`);
    this.cluster = rec.cluster;
    this.filter = new ForwardFilter(config.forward);
    this.summary = new SummaryOrigin(clusterOrigin(this.cluster, src.rootName), src.limits);
    const tlsConfig = config.tls ?? src.treeTls;
    const tls = tlsConfig !== undefined ? new TreeTls(tlsConfig, this.centralName, topology) : undefined;
    this.session = new UplinkSession(
      chainOf(topology, this.centralName, config.topology),
      {
        hello: () => ({ node: this.centralName, tree: rec.tree, epoch: ++this.linkEpoch }),
        onResync: (origins) => this.resync(origins),
        leaving: () => this.leaveFrames(),
      },
      {
        flushMs: config.flushMs,
        maxQueuedFrames: config.maxQueuedFrames,
        ackTimeoutMs: config.ackTimeoutMs ?? 2 * src.intervalMs,
        connectTimeoutMs: config.ackTimeoutMs ?? 2 * src.intervalMs,
        healAfterMs: config.healAfterMs ?? 10 * src.intervalMs,
        probeIntervalMs: Math.min(1000, src.intervalMs),
        handoverMs: 2 * src.intervalMs,
        limits: src.limits,
        ...(tls !== undefined ? { tls } : {}),
      },
      new GrpcParentProbe(this.centralName, rec.tree, tls),
      log.child({ part: "central" }),
      registry,
    );
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the gauge reads the output when scraped
    const self = this;
    this.m = {
      frames: counter(registry, "banyan_central_frames_total", "Frames this root sent toward the central root, by kind (key, delta, values, events, leave).", ["kind"] as const),
      events: counter(registry, "banyan_central_events_total", "Events sent toward the central root, and those dropped (a burst past the pending bound).", ["outcome"] as const),
      origins: gauge(registry, "banyan_central_forwarded_origins", "Nodes whose series this root forwards to the central root now.", [], function () {
        this.set(self.forwarded.size);
      }),
    };
  }

  /** The central topology changed (SIGHUP): a new chain of central roots. */
  setTopology(topology: Topology): void {
    this.session.setChain(chainOf(topology, this.centralName, this.config.topology), "central topology reloaded");
  }

  start(view: OutputView): void {
    this.session.start();
    if (this.config.forward.events) this.unsubscribe = this.src.events.subscribe((e) => this.queueEvent(e));
    for (const st of view.origins()) if (st.up) this.shown(st);
    this.tickTimer = setInterval(() => this.tick(Date.now()), this.src.intervalMs);
    this.tickTimer.unref();
  }

  async stop(): Promise<void> {
    if (this.tickTimer !== null) clearInterval(this.tickTimer);
    this.unsubscribe?.();
    this.tick(Date.now());
    await this.session.close(1000);
  }

  applied(origin: OriginView, applied: AppliedFrame): void {
    if (!this.filter.raw) return;
    const f = this.forwarded.get(origin);
    if (f === undefined) return this.shown(origin);
    this.send(f.applied(origin, applied), "delta");
  }

  shown(origin: OriginView): void {
    if (!this.filter.raw) return;
    let f = this.forwarded.get(origin);
    if (f === undefined) {
      f = new ForwardedOrigin(clusterOrigin(this.cluster, origin.name), this.filter, this.src.limits, origin);
      this.forwarded.set(origin, f);
      this.byWire.set(f.wireName, origin);
    }
    this.send(f.restart(origin), "key");
  }

  hidden(origin: OriginView, _why: HiddenReason): void {
    const f = this.forwarded.get(origin);
    if (f === undefined) return;
    this.forwarded.delete(origin);
    this.byWire.delete(f.wireName);
    // Down or moved: the central root lets its series go now (a newer epoch from the node's new root wins over this).
    if (f.announced) this.send(leave(f.wireName, f.epoch, f.seq), "leave");
  }

  /** One interval: the summary, the events, and an alive record for each forwarded node that sent nothing. */
  tick(nowMs: number): void {
    const s = this.summary.tick(this.src.summary(), this.filter.raw || this.config.forward.series === "aggregates" ? this.src.aggregates() : null, nowMs);
    if (s !== null) this.send(s, "summary");
    const alive: Alive[] = [aliveRecord(this.summary.wireName, this.summary.epoch, this.summary.seq, nowMs)];
    for (const [st, f] of this.forwarded) {
      if (!f.sent && f.announced && st.up) alive.push(aliveRecord(f.wireName, f.epoch, f.seq, st.lastSampleMs));
      f.sent = false;
    }
    this.session.accept([], alive);
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_EVENTS_PER_FRAME);
      const frame = create(FrameSchema, { origin: this.summary.wireName, epoch: this.summary.epoch, seq: ++this.eventsSeq, timeMs: BigInt(nowMs), kind: FrameKind.EVENTS, codec: Codec.MSGPACK, payload: encodeEvents(batch) });
      this.send(frame, "events");
      this.m.events.inc({ outcome: "sent" }, batch.length);
    }
  }

  private queueEvent(e: RootEvent): void {
    if (this.pending.length >= MAX_PENDING_EVENTS) {
      this.pending.shift();
      this.m.events.inc({ outcome: "dropped" });
    }
    this.pending.push(e);
  }

  private send(frame: Frame | null, kind: string): void {
    if (frame === null) return;
    this.m.frames.inc({ kind: frame.kind === FrameKind.KEY ? "key" : frame.kind === FrameKind.VALUES ? "values" : kind === "summary" ? "delta" : kind });
    this.session.accept([frame], []);
  }

  /** The central root asks these origins for keyframes. */
  private resync(origins: readonly string[]): void {
    for (const name of origins) {
      if (name === this.summary.wireName) {
        this.summary.restart();
        continue;
      }
      const st = this.byWire.get(name);
      const f = st !== undefined ? this.forwarded.get(st) : undefined;
      if (st !== undefined && f !== undefined) this.send(f.restart(st), "key");
    }
  }

  /** Before a deliberate move (healing to the primary central root): LEAVE frames on the old path. */
  private leaveFrames(): Frame[] {
    const out = [leave(this.summary.wireName, this.summary.epoch, this.summary.seq)];
    for (const f of this.forwarded.values()) if (f.announced) out.push(leave(f.wireName, f.epoch, f.seq));
    return out;
  }
}

function leave(origin: string, epoch: bigint, seq: bigint): Frame {
  return create(FrameSchema, { origin, epoch, seq, timeMs: BigInt(Date.now()), kind: FrameKind.LEAVE, codec: Codec.MSGPACK, payload: new Uint8Array() });
}
