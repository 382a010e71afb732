import { SeriesType, seriesDef } from "../series/series-def.js";
import type { SampleTarget, Source } from "./source.js";

/**
 * A seeded, realistic stand-in for node_exporter: its families, label shapes and counter/gauge
 * mix (cpu seconds per cpu and mode, network and disk counters, memory and filesystem gauges,
 * temperatures, load). Each tick a share `changeRate` of the series move: counters by a plausible
 * increment, gauges by a few percent. For the demo, the tests and the bench; same seed, same stream.
 */
export interface SyntheticOptions {
  readonly series: number;
  readonly changeRate: number;
  readonly seed: number;
  /** Mixed into the seed so every node differs. */
  readonly node: string;
}

interface Template {
  readonly name: string;
  readonly type: SeriesType;
  readonly help: string;
  /** Labels of the k-th series of this template. */
  labels(k: number): Record<string, string>;
  /** Starting value and the typical size of a move. */
  readonly start: number;
  readonly step: number;
  readonly integer: boolean;
}

const MODES = ["idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user"];
const cpu = (k: number): Record<string, string> => ({ cpu: String(Math.floor(k / MODES.length)), mode: MODES[k % MODES.length]! });
const dev = (prefix: string) => (k: number): Record<string, string> => ({ device: `${prefix}${k}` });

const TEMPLATES: Template[] = [
  { name: "node_cpu_seconds_total", type: SeriesType.Counter, help: "Seconds the CPUs spent in each mode.", labels: cpu, start: 1e5, step: 0.5, integer: false },
  { name: "node_network_receive_bytes_total", type: SeriesType.Counter, help: "Network device statistic receive_bytes.", labels: dev("eth"), start: 1e10, step: 2e5, integer: true },
  { name: "node_network_transmit_bytes_total", type: SeriesType.Counter, help: "Network device statistic transmit_bytes.", labels: dev("eth"), start: 1e10, step: 2e5, integer: true },
  { name: "node_network_receive_packets_total", type: SeriesType.Counter, help: "Network device statistic receive_packets.", labels: dev("eth"), start: 1e7, step: 300, integer: true },
  { name: "node_disk_reads_completed_total", type: SeriesType.Counter, help: "The total number of reads completed successfully.", labels: dev("nvme"), start: 1e6, step: 40, integer: true },
  { name: "node_disk_written_bytes_total", type: SeriesType.Counter, help: "The total number of bytes written successfully.", labels: dev("nvme"), start: 1e11, step: 4e5, integer: true },
  { name: "node_memory_MemAvailable_bytes", type: SeriesType.Gauge, help: "Memory information field MemAvailable_bytes.", labels: (k): Record<string, string> => (k === 0 ? {} : { numa: String(k) }), start: 2e11, step: 0.05, integer: true },
  { name: "node_filesystem_avail_bytes", type: SeriesType.Gauge, help: "Filesystem space available to non-root users in bytes.", labels: (k) => ({ device: `/dev/md${k}`, fstype: "xfs", mountpoint: `/scratch${k}` }), start: 5e12, step: 0.02, integer: true },
  { name: "node_hwmon_temp_celsius", type: SeriesType.Gauge, help: "Hardware monitor for temperature (input)", labels: (k) => ({ chip: "platform_coretemp_0", sensor: `temp${k + 1}` }), start: 55, step: 0.05, integer: false },
  { name: "node_load1", type: SeriesType.Gauge, help: "1m load average.", labels: (k): Record<string, string> => (k === 0 ? {} : { shard: String(k) }), start: 32, step: 0.1, integer: false },
];
/** How many series of each template per round: cpu-heavy, like a real many-core node. */
const WEIGHTS = [24, 2, 2, 2, 2, 2, 1, 2, 2, 1];

export class SyntheticSource implements Source {
  readonly name = "synthetic";
  private ids: number[] = [];
  private values: Float64Array;
  private steps: Float64Array;
  private kinds: Uint8Array; // 0 counter (float), 1 counter (integer), 2 gauge
  private defs: ReturnType<typeof seriesDef>[] = [];
  private rand: () => number;

  constructor(private readonly opts: SyntheticOptions) {
    this.rand = mulberry32(opts.seed ^ hashString(opts.node));
    this.values = new Float64Array(opts.series);
    this.steps = new Float64Array(opts.series);
    this.kinds = new Uint8Array(opts.series);
    const counts = new Array<number>(TEMPLATES.length).fill(0);
    for (let s = 0; s < opts.series; ) {
      for (let t = 0; t < TEMPLATES.length && s < opts.series; t++) {
        for (let w = 0; w < WEIGHTS[t]! && s < opts.series; w++, s++) {
          const tpl = TEMPLATES[t]!;
          const k = counts[t]!++;
          this.defs.push(seriesDef(tpl.name, tpl.labels(k), tpl.type, { help: tpl.help }));
          const jitter = 0.5 + this.rand();
          this.values[s] = tpl.integer ? Math.round(tpl.start * jitter) : Math.round(tpl.start * jitter * 100) / 100;
          this.steps[s] = tpl.step;
          this.kinds[s] = tpl.type === SeriesType.Counter ? (tpl.integer ? 1 : 0) : 2;
        }
      }
    }
  }

  collect(target: SampleTarget): void {
    if (this.ids.length === 0) this.ids = this.defs.map((d) => target.define(d));
    const rate = this.opts.changeRate;
    const v = this.values;
    for (let s = 0; s < v.length; s++) {
      if (this.rand() < rate) {
        const kind = this.kinds[s]!;
        const step = this.steps[s]!;
        if (kind === 0) v[s] = Math.round((v[s]! + step * (0.2 + this.rand() * 1.6)) * 100) / 100;
        else if (kind === 1) v[s] = v[s]! + Math.round(step * (0.2 + this.rand() * 1.6));
        else {
          const moved = v[s]! * (1 + (this.rand() - 0.5) * 2 * step);
          v[s] = Number.isInteger(v[s]!) ? Math.round(moved) : Math.round(moved * 100) / 100;
        }
      }
      target.set(this.ids[s]!, v[s]!);
    }
  }
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
