import type { Registry } from "prom-client";
import type { Inventory } from "../fleet/inventory.js";
import type { RootJobs } from "../fleet/root-jobs.js";
import type { RootStatus } from "../fleet/root-status.js";
import type { RootStore } from "../ingest/root-store.js";
import type { LabelPairs } from "../../series/series-def.js";

/** One partition's USE figures (utilisation, saturation, errors) over its nodes that are up. */
export interface UseRow {
  nodes: number;
  nodes_up: number;
  cpu_busy_percent: number | null;
  load_per_core: number | null;
  memory_used_percent: number | null;
  /** Seconds a second some task waited for memory (PSI), summed; null where no node has PSI. */
  memory_pressure: number | null;
  net_errors_per_s: number | null;
}

type Counter = { v: number; t: number };

/**
 * USE by partition, computed at the root from what it holds: CPU busy from the idle counters' rate,
 * load over cores, memory used, memory pressure (PSI), network errors and drops a second. Each
 * node's figures are sums of a few of its series, their ids found again only when its definitions
 * change (Inventory.sumOf), so a computation costs a few lookups per node; it is shared by every
 * stream for half an interval.
 */
export class UseOverview {
  private readonly last = new Map<string, Counter>();
  private cached: { atMs: number; rows: Map<string, UseRow> } | null = null;

  constructor(
    private readonly inventory: Inventory,
    private readonly store: RootStore,
    private readonly expected: () => ReadonlySet<string>,
    private readonly intervalMs: () => number,
  ) {}

  rows(nowMs = Date.now()): Map<string, UseRow> {
    if (this.cached !== null && nowMs - this.cached.atMs < this.intervalMs() / 2) return this.cached.rows;
    const rate = (what: string, key: string, v: number | null, t: number): number | null => {
      if (v === null) return null;
      const id = `${what} ${key}`;
      const p = this.last.get(id);
      this.last.set(id, { v, t });
      return p === undefined || t <= p.t || v < p.v ? null : (v - p.v) / ((t - p.t) / 1000);
    };
    const inv = this.inventory;
    const idle = (labels: LabelPairs): boolean => labels.some(([k, v]) => k === "mode" && v === "idle");
    const acc = new Map<string, { nodes: number; up: number; busy: number[]; load: number[]; mem: number[]; psi: number[]; errs: number[] }>();
    for (const e of inv.entries(this.expected(), this.intervalMs() / 2, nowMs)) {
      const key = e.cluster !== undefined ? `${e.cluster}/${e.node}` : e.node;
      const st = this.store.origin(key);
      const up = st !== undefined && st.up;
      const t = st?.lastSampleMs ?? 0;
      const busyRate = up ? rate("idle", key, inv.sumOf(st, "node_cpu_seconds_total", idle, "mode=idle"), t) : null;
      const psiRate = up ? rate("psi", key, inv.sumOf(st, "node_pressure_memory_waiting_seconds_total"), t) : null;
      let errs: number | null = null;
      if (up) for (const name of ERROR_COUNTERS) errs = sumNull(errs, inv.sumOf(st, name));
      const errRate = up ? rate("errs", key, errs, t) : null;
      const load = up ? inv.sumOf(st, "node_load1") : null;
      const avail = up ? inv.sumOf(st, "node_memory_MemAvailable_bytes") : null;
      for (const p of e.partitions.length > 0 ? e.partitions : ["(none)"]) {
        let a = acc.get(p);
        if (a === undefined) acc.set(p, (a = { nodes: 0, up: 0, busy: [], load: [], mem: [], psi: [], errs: [] }));
        a.nodes++;
        if (!up) continue;
        a.up++;
        if (busyRate !== null && e.cpus !== null) a.busy.push(100 * (1 - busyRate / e.cpus));
        if (load !== null && e.cpus !== null) a.load.push(load / e.cpus);
        if (avail !== null && e.memory_bytes !== null && e.memory_bytes > 0) a.mem.push(100 * (1 - avail / e.memory_bytes));
        if (psiRate !== null) a.psi.push(psiRate);
        if (errRate !== null) a.errs.push(errRate);
      }
    }
    const mean = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length);
    const sum = (xs: number[]): number | null => (xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0));
    const rows = new Map<string, UseRow>();
    for (const [p, a] of acc) rows.set(p, { nodes: a.nodes, nodes_up: a.up, cpu_busy_percent: mean(a.busy), load_per_core: mean(a.load), memory_used_percent: mean(a.mem), memory_pressure: sum(a.psi), net_errors_per_s: sum(a.errs) });
    if (this.last.size > 4 * (this.expected().size + 1000)) this.last.clear();
    this.cached = { atMs: nowMs, rows };
    return rows;
  }
}

const ERROR_COUNTERS = ["node_network_receive_errs_total", "node_network_transmit_errs_total", "node_network_receive_drop_total", "node_network_transmit_drop_total"];
const sumNull = (a: number | null, b: number | null): number | null => (b === null ? a : (a ?? 0) + b);

/** Banyan's own health for the page: rates since the previous call, from the root's registry. */
export class HealthView {
  private prev: { t: number; updates: number; frames: number; resyncs: number } | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly store: RootStore,
    private readonly status: RootStatus,
    private readonly hub: () => number,
  ) {}

  async figures(nowMs = Date.now()): Promise<Map<string, Record<string, number | null>>> {
    const metrics = await this.registry.getMetricsAsJSON();
    const total = (name: string): number => {
      const m = metrics.find((x) => x.name === name);
      return m === undefined ? 0 : (m.values as { value: number }[]).reduce((a, v) => a + v.value, 0);
    };
    const latency = metrics.find((x) => x.name === "banyan_root_frame_latency_seconds");
    const quantile = (q: number): number | null => {
      if (latency === undefined) return null;
      const buckets = (latency.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]).filter((v) => v.metricName?.endsWith("_bucket"));
      const count = buckets.find((b) => b.labels["le"] === "+Inf")?.value ?? 0;
      if (count === 0) return null;
      const hit = buckets.find((b) => b.value >= q * count);
      return hit === undefined || hit.labels["le"] === "+Inf" ? null : Number(hit.labels["le"]) * 1000;
    };
    const now = { t: nowMs, updates: total("banyan_root_series_updates_total"), frames: total("banyan_root_frames_applied_total"), resyncs: total("banyan_root_resyncs_requested_total") };
    const p = this.prev;
    this.prev = now;
    const per = (a: number, b: number | undefined): number | null => (p === null || b === undefined || now.t <= p.t ? null : (a - b) / ((now.t - p.t) / 1000));
    let up = 0;
    for (const st of this.store.originStates) if (st.up) up++;
    const failovers = this.status.report(this.store, nowMs).trees.reduce((a, t) => a + t.failovers_1h, 0);
    return new Map([
      [
        "root",
        {
          updates_per_s: per(now.updates, p?.updates),
          frames_per_s: per(now.frames, p?.frames),
          resyncs_per_s: per(now.resyncs, p?.resyncs),
          latency_p50_ms: quantile(0.5),
          latency_p99_ms: quantile(0.99),
          failovers_1h: failovers,
          nodes_up: up,
          watchers: this.hub(),
        },
      ],
    ]);
  }
}

/** The page's overview in one stream: `job:<id>` (each job's figures), `use:<partition>`, `health`. */
export function overviewView(jobs: RootJobs, use: UseOverview, health: ReadonlyMap<string, unknown>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const j of jobs.list()) out.set(`job:${j.job_id}`, j);
  for (const [p, row] of use.rows()) out.set(`use:${p}`, row);
  out.set("health", health.get("root"));
  return out;
}

/** The jobs list as a view: running jobs (and those that ended lately) by id. */
export function jobsView(jobs: RootJobs): Map<string, unknown> {
  return new Map(jobs.list().map((j) => [j.job_id, j]));
}
