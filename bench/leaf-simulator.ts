import { create, toBinary } from "@bufbuild/protobuf";
import { Registry } from "prom-client";
import { silentLogger } from "../src/core/logger.js";
import { FrameKind, FrameSchema, type Alive, type Frame } from "../src/gen/banyan/v1/uplink_pb.js";
import { namePhase } from "../src/series/keyframe-schedule.js";
import { GrpcParentProbe } from "../src/wire/parent-probe.js";
import { aliveRecord } from "../src/wire/frame-flow.js";
import { slotAfter } from "../src/node/index.js";
import { UplinkSession } from "../src/wire/uplink-session.js";
import { connectTimeoutMs, defaultAckTimeoutMs, defaultHealAfterMs } from "../src/wire/tree-timing.js";
import { TreeTls } from "../src/wire/tree-tls.js";
import { readTopologyFile } from "../src/topology/topology-file.js";
import { treeTlsFiles } from "./bench-tls.js";
import { DEFAULT_MAX_QUEUED_FRAMES } from "../src/wire/wire-config.js";
import { DEFAULT_WIRE_LIMITS } from "../src/wire/wire-limits.js";
import type { SimulatedStream } from "./bench-plan.js";
import { buildTemplates, type TemplateOptions } from "./frame-templates.js";

/**
 * A worker process (forked by the bench) that plays the simulated part of the trees: one real
 * uplink stream per child slot of a frontier relay, carrying real encoded frames for every node of
 * that subtree, each node with its own epoch, sequence and offset into a template. Resyncs asked by
 * the roots are answered with the template's keyframe of that tick. Messages over IPC:
 *   → {type: "start", streams, templates, intervalMs, exclude}   ← {type: "started"}
 *   → {type: "stats"}   ← {type: "stats", frames, payloadBytes, envelopeBytes, alive, cpu, rss, failoverAtMs, failovers, parents}
 */
interface StartMessage {
  type: "start";
  streams: SimulatedStream[];
  templates: TemplateOptions;
  intervalMs: number;
  /** The start window of the first keyframes, as agents have it (KeyframeSchedule). */
  startSpreadMs: number;
  exclude: string | null;
  /** Mutual TLS on the tree: the directory of `banyan certs` and the topology file, or null. */
  tls: { dir: string; topology: string } | null;
}

interface OriginSim {
  readonly name: string;
  readonly template: number;
  /** Its tick in the keyframe period is (tick + offset) % period: 0 at the node's phase, as an agent's. */
  readonly offset: number;
  /** Nothing before this tick: the node's slot in the start window. */
  readonly startTick: number;
  epoch: bigint;
  seq: bigint;
  needKey: boolean;
}

const sessions: UplinkSession[] = [];
/** Each stream's child slot, beside its session (for the parents a stats answer lists). */
const slots: string[] = [];
let frames = 0;
let payloadBytes = 0;
let keyBytes = 0;
let envelopeBytes = 0;
let alives = 0;
let failoverAtMs = 0;
let failovers = 0;

// The bench is gone (however it died): so is this worker, and its ports with it.
process.once("disconnect", () => process.exit(0));

process.on("message", (raw: unknown) => {
  const msg = raw as { type: string };
  if (msg.type === "start") start(raw as StartMessage);
  else if (msg.type === "stats") {
    // Where each stream is attached now (a stream failing over names the parent it is trying).
    const parents = Object.fromEntries(sessions.map((x, k) => [slots[k]!, x.state === "ready" ? x.currentTarget.name : ""]));
    process.send!({ type: "stats", frames, payloadBytes, keyBytes, envelopeBytes, alive: alives, cpu: process.cpuUsage(), rss: process.memoryUsage().rss, failoverAtMs, failovers, parents });
  } else if (msg.type === "stop") {
    void Promise.all(sessions.map((s) => s.close(0))).then(() => process.exit(0));
  }
});

function start(m: StartMessage): void {
  const templates = buildTemplates(m.templates);
  const period = m.templates.period;
  const spreadTicks = Math.floor(m.startSpreadMs / m.intervalMs);
  const log = silentLogger();
  const registry = new Registry();
  let seedState = m.templates.seed >>> 0;
  const rand = (n: number): number => {
    seedState = (Math.imul(seedState, 1103515245) + 12345) >>> 0;
    return seedState % n;
  };
  const topology = m.tls !== null ? readTopologyFile(m.tls.topology) : null;
  const streams = m.streams.map((s) => {
    // Each stream speaks for its child slot: with mutual TLS, with that node's certificate.
    const tls = m.tls !== null && topology !== null ? new TreeTls(treeTlsFiles(m.tls.dir, s.node), s.node, topology) : undefined;
    const origins: OriginSim[] = s.origins
      .filter((o) => o !== m.exclude)
      .map((name) => {
        const phase = namePhase(name);
        return { name, template: rand(templates.length), offset: (period - Math.floor(phase * period)) % period, startTick: Math.floor(phase * spreadTicks), epoch: BigInt(Date.now()), seq: 0n, needKey: true };
      });
    const byName = new Map(origins.map((o) => [o.name, o]));
    const wantKey = (names: readonly string[]): void => {
      for (const n of names) {
        const o = byName.get(n);
        if (o !== undefined) o.needKey = true;
      }
    };
    const session = new UplinkSession(
      s.chain,
      {
        hello: () => {
          const top = byName.get(s.node);
          if (top !== undefined) {
            top.epoch++;
            top.needKey = true;
          }
          return { node: s.node, tree: s.tree, epoch: top?.epoch ?? 1n };
        },
        onResync: wantKey,
        leaving: () => [],
        onState: (state) => {
          if (state === "failing-over") {
            failovers++;
            if (failoverAtMs === 0) failoverAtMs = Date.now();
          }
        },
      },
      // The nodes' own timing (tree-timing.ts), as their agents would have it.
      {
        flushMs: 20,
        maxQueuedFrames: DEFAULT_MAX_QUEUED_FRAMES,
        ackTimeoutMs: defaultAckTimeoutMs(m.intervalMs),
        connectTimeoutMs: connectTimeoutMs(m.intervalMs, defaultAckTimeoutMs(m.intervalMs)),
        healAfterMs: defaultHealAfterMs(m.intervalMs),
        probeIntervalMs: m.intervalMs,
        limits: DEFAULT_WIRE_LIMITS,
        ...(tls !== undefined ? { tls } : {}),
      },
      new GrpcParentProbe(s.node, s.tree, tls),
      log,
      registry,
    );
    sessions.push(session);
    slots.push(s.node);
    session.start();
    return { session, origins };
  });

  // Each stream ticks at its branch's phase of the interval, as the agents of its subtree would
  // (samplingBranch): streams of one phase share a timer.
  let overheadPerFrame = -1;
  const step = (group: readonly (typeof streams)[number][], tick: number): void => {
    const now = Date.now();
    for (const { session, origins } of group) {
      const out: Frame[] = [];
      const alive: Alive[] = [];
      for (const o of origins) {
        if (tick < o.startTick) continue;
        const k = (tick + o.offset) % period;
        const kind = o.needKey ? FrameKind.KEY : k === 0 ? FrameKind.VALUES : FrameKind.DELTA;
        const tpl = templates[o.template]!;
        const p = o.needKey ? tpl.keys[k]! : k === 0 ? tpl.periodicKey : tpl.deltas[k];
        if (p === null || p === undefined) {
          alive.push(aliveRecord(o.name, o.epoch, o.seq, now));
          continue;
        }
        o.needKey = false;
        o.seq++;
        const f = create(FrameSchema, { origin: o.name, epoch: o.epoch, seq: o.seq, timeMs: BigInt(now), kind, codec: p.codec, payload: p.bytes });
        // What a leaf's own frame costs on its link beyond the payload: its epoch is the Hello's, so
        // it travels as 0 (see ParentStream); + the repeated-field tag and length in the Batch.
        if (overheadPerFrame < 0) overheadPerFrame = toBinary(FrameSchema, { ...f, epoch: 0n }).length - p.bytes.length + 3;
        out.push(f);
        payloadBytes += p.bytes.length;
        if (kind === FrameKind.KEY) keyBytes += p.bytes.length;
        envelopeBytes += overheadPerFrame;
      }
      frames += out.length;
      alives += alive.length;
      session.accept(out, alive);
      session.flushNow();
    }
  };
  const byPhase = new Map<number, (typeof streams)[number][]>();
  m.streams.forEach((s, k) => {
    const phaseMs = Math.floor(namePhase(s.phaseOf) * m.intervalMs);
    let group = byPhase.get(phaseMs);
    if (group === undefined) byPhase.set(phaseMs, (group = []));
    group.push(streams[k]!);
  });
  for (const [phaseMs, group] of byPhase) {
    // Ticks counted per group: tick k replays each template's frame k after k - 1.
    let tick = 0;
    const schedule = (): void => {
      setTimeout(() => {
        schedule();
        step(group, tick++);
      }, slotAfter(Date.now(), phaseMs, m.intervalMs) - Date.now());
    };
    schedule();
  }
  process.send!({ type: "started" });
}
