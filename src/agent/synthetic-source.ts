import { readFileSync } from "node:fs";
import { packageFile } from "../core/package-file.js";
import { SeriesType, seriesDef, type SeriesDef } from "../series/series-def.js";
import { parseExposition, type ParsedSample } from "../series/text-parser.js";
import type { SampleTarget, Source } from "../node/source.js";

/**
 * A seeded stand-in for node_exporter, calibrated on a real scrape of it (node_exporter 1.5 on a
 * small VM: data/node_exporter-1.5.0-sample.prom, 505 series). It serves those very series —
 * families, label shapes, counter/gauge/summary mix, real magnitudes — repeated with a `replica`
 * label when more are asked for. Each tick a share `changeRate` of all series move: counters up by
 * an amount in proportion to their size, gauges by a few percent; flags and infos (gauges at 0 or
 * 1) stay as they are, as on a real node. A quarter to a third of an idle node's series change
 * within 15 s, about 2.3 % per 1 s tick: that is the default rate. As on a real node, counters at
 * 0 (errors, drops) stay at 0, and the CPUs' idle, user and system seconds move every tick by what
 * the elapsed time gives each mode: an idle node is ~96 % idle, one node in five runs a busy job
 * (~90 % user); they count within the change rate.
 */
export interface SyntheticOptions {
  readonly series: number;
  readonly changeRate: number;
  readonly seed: number;
  /** Mixed into the seed so every node differs. */
  readonly node: string;
}

/** The calibrated default: 1 - (1 - 0.023)^15 ≈ 0.3 of the series change within 15 s. */
export const CALIBRATED_CHANGE_RATE = 0.023;

let sampleCache: ParsedSample[] | null = null;

/** The real node_exporter scrape the generator is calibrated on. */
export function nodeExporterSample(): ParsedSample[] {
  if (sampleCache === null) {
    const all = parseExposition(readFileSync(packageFile("data/node_exporter-1.5.0-sample.prom"), "utf8")).samples;
    // The node's own metrics first, the exporter's (go_*, process_*, promhttp_*) last: a node asked
    // for fewer series than the scrape has gets the ones dashboards read.
    sampleCache = [...all.filter((x) => x.name.startsWith("node_")), ...all.filter((x) => !x.name.startsWith("node_"))];
  }
  return sampleCache;
}

const MONOTONE = new Set<SeriesType>([SeriesType.Counter]);

export class SyntheticSource implements Source {
  readonly name = "synthetic";
  private ids: number[] = [];
  private readonly defs: SeriesDef[] = [];
  private readonly values: Float64Array;
  /** 0: constant, 1: counter (integer), 2: counter (fraction), 3: gauge (integer), 4: gauge (fraction), 5: CPU seconds (see cpuShare). */
  private readonly kinds: Uint8Array;
  /** Of a CPU-seconds series (kind 5): the share of each second its mode takes. */
  private readonly cpuShare: Float64Array;
  private lastMs = 0;
  private readonly moveProbability: number;
  private readonly rand: () => number;

  constructor(opts: SyntheticOptions) {
    this.rand = mulberry32(opts.seed ^ hashString(opts.node));
    const sample = nodeExporterSample();
    this.values = new Float64Array(opts.series);
    this.kinds = new Uint8Array(opts.series);
    this.cpuShare = new Float64Array(opts.series);
    const shares = this.rand() < BUSY_NODES ? BUSY_CPU : IDLE_CPU;
    let movable = 0;
    let everyTick = 0;
    for (let k = 0; k < opts.series; k++) {
      const s = sample[k % sample.length]!;
      const replica = Math.floor(k / sample.length);
      const labels = replica === 0 ? s.labels : { ...s.labels, replica: String(replica) };
      const counterLike = MONOTONE.has(s.type) || s.name.endsWith("_count") || s.name.endsWith("_sum") || s.name.endsWith("_total");
      const type = s.type === SeriesType.Untyped && counterLike ? SeriesType.Counter : s.type;
      this.defs.push(seriesDef(s.name, labels, type, { family: s.family, help: s.help }));
      const integer = Number.isInteger(s.value);
      let v = Number.isFinite(s.value) ? s.value : 0;
      if (!counterLike && !integer) v = round4(v * (0.8 + 0.4 * this.rand()));
      this.values[k] = v;
      const cpuMode = s.name === "node_cpu_seconds_total" ? s.labels["mode"] : undefined;
      const kind = cpuMode !== undefined ? (shares[cpuMode] !== undefined ? 5 : 0) : counterLike ? (v === 0 ? 0 : integer ? 1 : 2) : v === 0 || v === 1 ? 0 : integer ? 3 : 4;
      this.kinds[k] = kind;
      if (kind === 5) {
        this.cpuShare[k] = shares[cpuMode!]!;
        everyTick++;
      } else if (kind !== 0) movable++;
    }
    this.moveProbability = movable === 0 ? 0 : Math.min(1, Math.max(0, opts.changeRate * opts.series - everyTick) / movable);
  }

  collect(target: SampleTarget, nowMs = Date.now()): void {
    if (this.ids.length === 0) this.ids = this.defs.map((d) => target.define(d));
    const v = this.values;
    const p = this.moveProbability;
    const elapsedS = this.lastMs === 0 ? 0 : Math.max(0, (nowMs - this.lastMs) / 1000);
    this.lastMs = nowMs;
    for (let s = 0; s < v.length; s++) {
      const kind = this.kinds[s]!;
      if (kind === 5) {
        // Kept exact, shown in hundredths as /proc/stat's ticks are: never back, right on average.
        v[s] = v[s]! + this.cpuShare[s]! * elapsedS;
        target.set(this.ids[s]!, Math.floor(v[s]! * 100 + 1e-6) / 100);
        continue;
      }
      if (kind !== 0 && this.rand() < p) {
        const x = v[s]!;
        const r = 0.2 + 1.6 * this.rand();
        if (kind === 1) v[s] = x + Math.max(1, Math.round(Math.abs(x) * 1e-5 * r));
        else if (kind === 2) {
          // Grow in units of the value's last decimal place: rounding must never take a counter back.
          const scale = 10 ** decimalsOf(x);
          v[s] = (Math.round(x * scale) + Math.max(1, Math.round(Math.abs(x) * 1e-5 * r * scale))) / scale;
        }
        else {
          const moved = x * (1 + (this.rand() - 0.5) * 0.1);
          v[s] = kind === 3 ? Math.round(moved) : round4(moved);
        }
      }
      target.set(this.ids[s]!, v[s]!);
    }
  }
}

/** A node runs a busy job with this probability (the rest are idle). */
const BUSY_NODES = 0.2;
/** Shares of a CPU's second by mode: as /proc/stat shows an idle node and one running a compute job (the other modes stay put). */
const IDLE_CPU: Readonly<Record<string, number>> = { idle: 0.96, user: 0.025, system: 0.015 };
const BUSY_CPU: Readonly<Record<string, number>> = { idle: 0.06, user: 0.9, system: 0.04 };

/** Decimal places of a value as printed (at most 9). */
function decimalsOf(x: number): number {
  const str = String(x);
  const e = str.indexOf("e-");
  if (e >= 0) return Math.min(9, Number(str.slice(e + 2)) + (str.slice(0, e).split(".")[1]?.length ?? 0));
  return Math.min(9, str.split(".")[1]?.length ?? 0);
}

/** Four significant digits: the resolution a /proc value or an exporter typically prints. */
function round4(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.floor(Math.log10(Math.abs(x))) - 3;
  const f = 10 ** -e;
  return e < 0 ? Math.round(x * f) / f : Math.round(x / 10 ** e) * 10 ** e;
}

/** A small, fast, seedable PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hashString(s: string): number {
  let h = 2166136261;
  for (let k = 0; k < s.length; k++) h = Math.imul(h ^ s.charCodeAt(k), 16777619);
  return h >>> 0;
}
