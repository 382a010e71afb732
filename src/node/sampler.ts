import { create } from "@bufbuild/protobuf";
import type { Registry } from "prom-client";
import { Histogram } from "prom-client";
import { LimitedWarning, type Logger } from "../core/logger.js";
import { counter, gauge } from "../core/metric-names.js";
import { FrameKind, FrameSchema } from "../gen/banyan/v1/uplink_pb.js";
import { DeltaEncoder } from "../series/delta-encoder.js";
import { KeyframeSchedule, namePhase } from "../series/keyframe-schedule.js";
import { DEFAULT_PRECISION_RULES, PrecisionRules, type PrecisionRule } from "../series/precision.js";
import type { SeriesLimits } from "../series/payload.js";
import type { SeriesDef } from "../series/series-def.js";
import type { FrameSink } from "../wire/frame-flow.js";
import { encodePayload } from "../wire/payload-codec.js";
import { aliveRecord } from "../wire/frame-flow.js";
import type { SampleTarget, Source } from "./source.js";

export interface SamplerOptions {
  /** This node's name: the origin of its frames and the `instance` of its series at the root. */
  readonly origin: string;
  readonly intervalMs: number;
  readonly keyframeIntervalMs: number;
  /** The first keyframe after a start waits for the node's phase within this window (see KeyframeSchedule). */
  readonly startSpreadMs: number;
  /** `job` label added to every series that has none. */
  readonly job: string;
  readonly precision: readonly PrecisionRule[];
  /** The wire's limits (series and string table per origin); default: the wire's defaults. */
  readonly limits?: SeriesLimits;
  /** The name whose hash sets the sampling phase (its branch of the trees: samplingBranch); default: origin. */
  readonly phaseOf?: string;
}

/**
 * A node's sampling loop (an agent's or a relay's): every interval, at its branch's phase of it (a hash of the name), it
 * runs the sources, encodes what left its precision bound, and hands one frame, or an alive
 * record when nothing changed, to its sink. Epoch and sequence live here: the epoch is the start
 * time in ms, bumped on every new uplink stream; the sequence never goes back.
 */
export class Sampler {
  private readonly encoder: DeltaEncoder;
  private epochNow: bigint;
  private seqNow = 0n;
  private readonly keys: KeyframeSchedule;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private lastTickMs = 0;
  /** Wall time of the last whole tick (collect and encode), seconds. */
  lastTickSeconds = 0;
  private stopped = false;
  private readonly target: SampleTarget;
  private readonly m;

  constructor(
    private readonly opts: SamplerOptions,
    private readonly sources: readonly Source[],
    private readonly sink: FrameSink,
    private readonly log: Logger,
    registry: Registry,
    /** Called after each tick's frame is handed over (the relay may then flush at once). */
    private readonly onTick: () => void = () => undefined,
  ) {
    // The site's rules first, then the documented defaults (temperatures, times, load, infos).
    this.encoder = new DeltaEncoder(new PrecisionRules([...opts.precision, ...DEFAULT_PRECISION_RULES]), opts.limits);
    const full = new LimitedWarning(log, `series refused: this node already has the wire's most series per origin (limits.maxSeriesPerOrigin)`, 60_000);
    this.epochNow = BigInt(Date.now());
    this.keys = new KeyframeSchedule(opts.origin, opts, Date.now());
    const enc = this.encoder;
    const job = opts.job;
    this.target = {
      define: (def: SeriesDef) => {
        const id = enc.define(def.labels.some(([k]) => k === "job") ? def : withJob(def, job));
        if (id < 0) {
          this.m.refused.inc();
          full.warn({ series: enc.size, name: def.name });
        }
        return id;
      },
      set: (id, v) => enc.set(id, v),
      remove: (id) => enc.remove(id),
    };
    this.m = {
      ticks: counter(registry, "banyan_agent_ticks_total", "Sampling ticks run."),
      skipped: counter(registry, "banyan_agent_ticks_skipped_total", "Ticks skipped because the previous one was still running."),
      frames: counter(registry, "banyan_agent_frames_total", "Frames produced by this node's sampler.", ["kind"] as const),
      bytes: counter(registry, "banyan_agent_payload_bytes_total", "Payload bytes produced by this node's sampler."),
      refused: counter(registry, "banyan_agent_series_refused_total", "Series not sampled: the node had the wire's most series per origin."),
      sourceErrors: counter(registry, "banyan_agent_source_errors_total", "Source collections that failed.", ["source"] as const),
      tickSeconds: new Histogram({
        name: "banyan_agent_tick_seconds",
        help: "Time to collect and encode one tick.",
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
        registers: [registry],
      }),
      series: gauge(registry, "banyan_agent_series", "Series this node samples.", [], function () {
        this.set(enc.size);
      }),
    };
  }

  get origin(): string {
    return this.opts.origin;
  }

  get epoch(): bigint {
    return this.epochNow;
  }

  get seq(): bigint {
    return this.seqNow;
  }

  /** A new stream toward a parent: new epoch, and the next frame is a keyframe. */
  newEpoch(): bigint {
    this.epochNow++;
    this.encoder.requestKeyframe();
    return this.epochNow;
  }

  requestKeyframe(): void {
    this.encoder.requestKeyframe();
  }

  start(): void {
    // Each branch of the trees samples at its own phase of the interval (a hash of its name, so the
    // same across restarts: samplingBranch): a whole cluster never wakes in the same millisecond
    // (all on the whole second, agents on one machine counted each other in node_procs_running),
    // while a relay still gets its subtree's tick at once and forwards it in one batch.
    const interval = this.opts.intervalMs;
    const phaseMs = Math.floor(namePhase(this.opts.phaseOf ?? this.opts.origin) * interval);
    let due = slotAfter(Date.now(), phaseMs, interval);
    const fire = (): void => {
      // Node counts a timer from its loop's cached clock, so it may fire a little before `due`: it
      // is still that slot's tick (rearming from Date.now() ticked twice, ms apart, under load). A
      // timer late past whole slots (a stalled loop) skips them rather than ticking to catch up.
      due = slotAfter(Math.max(due, Date.now()), phaseMs, interval);
      arm();
      void this.tick();
    };
    const arm = (): void => {
      if (!this.stopped) this.timer = setTimeout(fire, Math.max(0, due - Date.now()));
    };
    arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const s of this.sources) s.close?.();
  }

  /** One tick: collect, encode, hand over. Public so tests and the bench can drive time. */
  async tick(nowMs = Date.now()): Promise<void> {
    // Sample times only go forward, a ms at least, even when the wall clock steps back: the root
    // keys a node's values by them (two ticks in one ms showed the older values under the newer time).
    nowMs = Math.max(nowMs, this.lastTickMs + 1);
    if (this.running) {
      this.m.skipped.inc();
      return;
    }
    this.running = true;
    this.lastTickMs = nowMs;
    const t0 = performance.now();
    try {
      for (const s of this.sources) {
        try {
          await s.collect(this.target, nowMs);
        } catch (err) {
          this.m.sourceErrors.inc({ source: s.name });
          this.log.warn({ source: s.name, err: (err as Error).message }, "source failed this tick");
        }
      }
      // Before its slot in the start window the node sends nothing: the root does not know it yet.
      if (this.keys.started(nowMs)) this.send(nowMs);
      this.m.ticks.inc();
      this.onTick();
    } finally {
      // One clock for both: the histogram and the node's longest-tick gauge.
      this.lastTickSeconds = (performance.now() - t0) / 1000;
      this.m.tickSeconds.observe(this.lastTickSeconds);
      this.running = false;
    }
  }

  private send(nowMs: number): void {
    if (this.keys.periodicDue(nowMs)) this.encoder.requestKeyframe("values");
    const f = this.encoder.encode();
    if (f === null) {
      this.sink.accept([], [aliveRecord(this.opts.origin, this.epochNow, this.seqNow, nowMs)]);
      return;
    }
    this.seqNow++;
    if (f.kind !== "delta") this.keys.sent(nowMs);
    const wire = encodePayload(f.payload);
    const kind = f.kind === "key" ? FrameKind.KEY : f.kind === "values" ? FrameKind.VALUES : FrameKind.DELTA;
    this.sink.accept([create(FrameSchema, { origin: this.opts.origin, epoch: this.epochNow, seq: this.seqNow, timeMs: BigInt(nowMs), kind, codec: wire.codec, payload: wire.bytes })], []);
    this.m.frames.inc({ kind: f.kind });
    this.m.bytes.inc(wire.bytes.length);
  }
}

/** The first of a node's sampling slots (phaseMs + k·intervalMs) after `afterMs`. */
export function slotAfter(afterMs: number, phaseMs: number, intervalMs: number): number {
  const into = (((afterMs - phaseMs) % intervalMs) + intervalMs) % intervalMs;
  return afterMs - into + intervalMs;
}

function withJob(def: SeriesDef, job: string): SeriesDef {
  const labels = [...def.labels, ["job", job] as const].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { ...def, labels };
}
