import type { BenchCluster } from "../bench-cluster.js";
import { grownByLabel, type RootMetrics } from "../root-metrics.js";

/** What the roots say of a node, merged over the roots (up at any; its newest sample at any). */
export interface NodeView {
  up: boolean;
  lastSampleMs: number;
}

/** Every node as the roots show it; `complete` false when a root did not answer. */
export type View = Map<string, NodeView> & { complete?: boolean };

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * The roots' view of every node (`skip`: a root not asked, cut off on purpose). A root that did
 * not answer (busy, or its answer timed out) leaves its nodes out: a node it holds would then show
 * as the other root left it (down, after a move), so a view missing a root says nothing of who is
 * down (`complete` false).
 */
export async function view(cluster: BenchCluster, skip?: string): Promise<View> {
  const reports = await cluster.nodes(skip);
  const out: View = new Map<string, NodeView>();
  out.complete = reports.every((r) => r.length > 0);
  for (const n of reports.flat()) {
    const v = out.get(n.node);
    if (v === undefined) out.set(n.node, { up: n.up, lastSampleMs: n.last_sample_ms });
    else {
      v.up ||= n.up;
      v.lastSampleMs = Math.max(v.lastSampleMs, n.last_sample_ms);
    }
  }
  return out;
}

/** Frames the roots dropped between two readings, by reason (only reasons that grew). */
export function droppedBetween(before: RootMetrics, after: RootMetrics): Record<string, number> {
  return grownByLabel(before, after, "banyan_root_frames_dropped_total", "reason");
}

/**
 * One node's counters as the roots show them (`/api/v1/query` at every root that answers), read
 * again and again: a value below one read before, at any root, is a counter gone backwards (a
 * replayed or reordered frame applied over a newer one). One request per root a reading; a reading
 * still out when the next is asked is skipped.
 */
export class CounterWatch {
  private readonly highest = new Map<string, number>();
  private readings = 0;
  private backwards = 0;
  private busy = false;

  constructor(
    private readonly cluster: BenchCluster,
    private readonly node: string,
    private readonly metric: string,
  ) {}

  async read(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const q = encodeURIComponent(`${this.metric}{instance="${this.node}"}`);
      const answers = await Promise.all(
        this.cluster.roots.map((r) =>
          fetch(`http://${r.http}/api/v1/query?query=${q}`, { signal: AbortSignal.timeout(1000) })
            .then((x) => x.json() as Promise<{ data?: { result: { metric: Record<string, string>; value: [number, string] }[] } }>)
            .catch(() => ({ data: undefined })),
        ),
      );
      for (const a of answers) {
        for (const s of a.data?.result ?? []) {
          const key = Object.entries(s.metric).filter(([k]) => k !== "instance" && k !== "job").sort().join(",");
          const v = Number(s.value[1]);
          const before = this.highest.get(key);
          if (before !== undefined && v < before) this.backwards++;
          if (before === undefined || v > before) this.highest.set(key, v);
        }
      }
      this.readings++;
    } finally {
      this.busy = false;
    }
  }

  figures(): { series: number; readings: number; backwards: number } {
    return { series: this.highest.size, readings: this.readings, backwards: this.backwards };
  }
}
