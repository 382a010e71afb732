import { z } from "zod";
import { SeriesType } from "../../series/series-def.js";
import type { RootStore } from "../ingest/root-store.js";

/** `events.stragglers`: which job metrics are compared across a job's nodes, and how far off is a straggler. */
export const stragglerSchema = z.strictObject({
  /** banyan_job_* series compared per node: counters by their rate, gauges by their mean over the window. */
  metrics: z.array(z.string().regex(/^banyan_job_[a-zA-Z0-9_]+$/, "expected a banyan_job_* metric")).default(["banyan_job_cpu_seconds_total"]),
  /** A node is a straggler when its figure stays under this share of the job's median. */
  belowMedian: z.number().gt(0).lt(1).default(0.5),
  /** …over this whole window. */
  windowMs: z.number().int().positive().default(120_000),
  /** Jobs on fewer nodes are not judged (a median of two says little). */
  minNodes: z.number().int().min(2).default(3),
});
export type StragglerConfig = z.infer<typeof stragglerSchema>;

export interface Straggler {
  readonly job: string;
  readonly node: string;
  readonly metric: string;
  readonly value: number;
  readonly median: number;
  readonly labels: Record<string, string>;
}

/** Job, node and metric triples followed at most: the job series come from peers. */
const MAX_TRACKS = 100_000;

interface Track {
  /** Samples (ms, value) over the last window and a little more. */
  samples: [number, number][];
  counter: boolean;
  flagged: boolean;
}

/**
 * Stragglers among a running job's nodes: every scan, each node's value of each configured
 * banyan_job_* metric (its rate for a counter, its mean for a gauge, over `windowMs`) is compared
 * with the job's median over its nodes; a node under `belowMedian` × the median once a whole window
 * is in is a straggler (reported once, until it recovers). State: a few samples per job, node and
 * metric, dropped with the job. Cost per scan: O(the up nodes' job series).
 */
export class StragglerWatch {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly cfg: StragglerConfig) {}

  /** What became a straggler this scan, and what recovered. */
  scan(store: RootStore, now: number): { found: Straggler[]; recovered: Straggler[] } {
    const metrics = new Set(this.cfg.metrics);
    // job → metric → node → value over the window (null until a whole window is in).
    const figures = new Map<string, Map<string, Map<string, { value: number | null; key: string; labels: Record<string, string> }>>>();
    const seen = new Set<string>();
    for (const st of store.originStates) {
      if (!st.up || st.jobSeries.size === 0) continue;
      const name = st.name;
      for (const id of st.jobSeries) {
        const def = st.decoded.def(id);
        if (def === undefined || !metrics.has(def.name)) continue;
        const job = def.labels.find(([k]) => k === "job_id")?.[1];
        if (job === undefined) continue;
        const v = st.value(id);
        if (!Number.isFinite(v)) continue;
        const key = `${job}\0${name}\0${def.name}`;
        seen.add(key);
        let tr = this.tracks.get(key);
        if (tr === undefined && this.tracks.size >= MAX_TRACKS) continue;
        if (tr === undefined) this.tracks.set(key, (tr = { samples: [], counter: def.type === SeriesType.Counter, flagged: false }));
        tr.samples.push([now, v]);
        while (tr.samples.length > 2 && tr.samples[1]![0] <= now - this.cfg.windowMs) tr.samples.shift();
        const first = tr.samples[0]!;
        const whole = now - first[0] >= this.cfg.windowMs;
        let value: number | null = null;
        if (whole) {
          if (tr.counter) value = now > first[0] ? Math.max(0, v - first[1]) / ((now - first[0]) / 1000) : null;
          else value = tr.samples.reduce((s, [, x]) => s + x, 0) / tr.samples.length;
        }
        let byMetric = figures.get(job);
        if (byMetric === undefined) figures.set(job, (byMetric = new Map()));
        let byNode = byMetric.get(def.name);
        if (byNode === undefined) byMetric.set(def.name, (byNode = new Map()));
        const labels: Record<string, string> = { job_id: job, instance: name };
        for (const [k, x] of def.labels) if (k === "user" || k === "partition" || k === "account") labels[k] = x;
        byNode.set(name, { value, key, labels });
      }
    }
    for (const k of this.tracks.keys()) if (!seen.has(k)) this.tracks.delete(k);
    const found: Straggler[] = [];
    const recovered: Straggler[] = [];
    for (const [job, byMetric] of figures) {
      for (const [metric, byNode] of byMetric) {
        if (byNode.size < this.cfg.minNodes) continue;
        const values = [...byNode.values()].map((f) => f.value);
        if (values.some((v) => v === null)) continue;
        const sorted = (values as number[]).slice().sort((a, b) => a - b);
        const mid = sorted.length >> 1;
        const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
        if (median <= 0) continue;
        for (const [node, f] of byNode) {
          const tr = this.tracks.get(f.key)!;
          const s: Straggler = { job, node, metric, value: f.value!, median, labels: f.labels };
          const low = f.value! < this.cfg.belowMedian * median;
          if (low && !tr.flagged) {
            tr.flagged = true;
            found.push(s);
          } else if (!low && tr.flagged) {
            tr.flagged = false;
            recovered.push(s);
          }
        }
      }
    }
    return { found, recovered };
  }
}
