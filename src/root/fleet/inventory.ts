import type { DeltaDecoder } from "../../series/delta-decoder.js";
import type { LabelPairs } from "../../series/series-def.js";
import type { OriginState } from "../ingest/origin-state.js";
import type { RootStore } from "../ingest/root-store.js";
import type { StatusPlan } from "./root-status.js";

/** One node in /api/v1/inventory: where it is in the trees, what runs on it, and what it is. */
export interface InventoryEntry {
  readonly node: string;
  readonly cluster?: string;
  readonly up: boolean;
  /** Up, and waiting for a keyframe (after a gap): its values stand still until it comes. */
  readonly resyncing: boolean;
  readonly tree: number | null;
  /** Its leaf switch, when the topology has the site's topology.conf. */
  readonly switch: string | null;
  /** Its own count of failovers in the last hour. */
  readonly failovers_1h: number;
  /** Its parent now (its own word), and the one the topology plans. */
  readonly parent: string | null;
  readonly planned_parent: string | null;
  readonly root: string;
  /** From Slurm (banyan_node_slurm_info), else the root's events.nodeLabels (partition, features). */
  readonly partitions: readonly string[];
  readonly features: readonly string[];
  readonly slurm_state: string | null;
  /** Slurm jobs with series on the node now. */
  readonly jobs: readonly string[];
  readonly cpus: number | null;
  readonly memory_bytes: number | null;
  readonly gpus: number | null;
  readonly gpu_model: string | null;
  readonly os: string | null;
  readonly kernel: string | null;
  readonly arch: string | null;
}

/** What the definitions of one origin say (ids of the series whose values are read at request time). */
interface Facts {
  readonly decoder: DeltaDecoder;
  readonly version: number;
  readonly cpus: number | null;
  readonly memoryId: number;
  readonly gpus: number | null;
  readonly gpuModel: string | null;
  readonly os: string | null;
  readonly kernel: string | null;
  readonly arch: string | null;
  readonly slurm: Readonly<Record<string, string>> | null;
  readonly jobs: readonly string[];
}

const list = (s: string | undefined): string[] => (s === undefined || s === "" ? [] : s.split(",").filter((x) => x !== ""));

/**
 * The root's inventory: each node it knows (planned here, or seen), from the series the node already
 * sends — node_exporter's node_cpu_seconds_total (CPUs), node_memory_MemTotal_bytes, node_os_info,
 * node_uname_info, the GPUs' DCGM_FI_DEV_* series, and banyan_node_slurm_info (partitions, features,
 * state) — and the topology. What a node's definitions say is kept per origin and read again only
 * when its definitions change (a walk over its series), so a request costs a lookup per node.
 */
export class Inventory {
  private readonly facts = new WeakMap<OriginState, Facts>();

  constructor(
    private readonly store: RootStore,
    private plan: () => StatusPlan,
  ) {}

  /**
   * Every node's entry. `maxAgeMs`: entries made that recently will do (the streams and the USE
   * view of one interval share one walk over the nodes: at 10,000 nodes a walk is tens of ms).
   */
  entries(expected: ReadonlySet<string>, maxAgeMs = 0, nowMs = Date.now()): InventoryEntry[] {
    const c = this.cached;
    if (c !== null && c.expected === expected && nowMs - c.atMs <= maxAgeMs) return c.entries;
    const entries = this.build(expected);
    this.cached = { atMs: nowMs, expected, entries };
    return entries;
  }

  private cached: { atMs: number; expected: ReadonlySet<string>; entries: InventoryEntry[] } | null = null;

  private build(expected: ReadonlySet<string>): InventoryEntry[] {
    const plan = this.plan();
    const names = new Set(expected);
    for (const n of this.store.originNames) names.add(n);
    const out: InventoryEntry[] = [];
    for (const name of [...names].sort()) {
      const st = this.store.origin(name);
      const f = st !== undefined ? this.factsOf(st) : null;
      const labels = plan.labelsOf?.get(name);
      const status = st?.nodeStatus();
      const tree = plan.treeOf.get(name);
      out.push({
        node: st?.instance ?? name,
        ...(st?.cluster != null ? { cluster: st.cluster } : {}),
        up: st?.up === true,
        resyncing: st?.up === true && st.needKey,
        tree: tree ?? null,
        switch: plan.switchOf?.get(name) ?? null,
        failovers_1h: status?.failoversLastHour ?? 0,
        parent: status?.parent ?? null,
        planned_parent: plan.plannedParent.get(name) ?? status?.planned ?? null,
        root: plan.root,
        partitions: f?.slurm != null ? list(f.slurm["partitions"]) : list(labels?.["partition"] ?? labels?.["partitions"]),
        features: f?.slurm != null ? list(f.slurm["features"]) : list(labels?.["features"]),
        slurm_state: f?.slurm?.["state"] ?? null,
        jobs: f?.jobs ?? [],
        cpus: f?.cpus ?? null,
        memory_bytes: f !== null && f.memoryId >= 0 && st !== undefined ? st.value(f.memoryId) : null,
        gpus: f?.gpus ?? null,
        gpu_model: f?.gpuModel ?? null,
        os: f?.os ?? null,
        kernel: f?.kernel ?? null,
        arch: f?.arch ?? null,
      });
    }
    return out;
  }

  /**
   * The nodes of a partition ranked by a metric (the sum of its series on each node), highest
   * first; nodes without it, or down, last.
   */
  ranked(partition: string, metric: string, expected: ReadonlySet<string>, maxAgeMs = 0): { node: string; value: number | null; up: boolean; jobs: readonly string[] }[] {
    const rows = this.entries(expected, maxAgeMs)
      .filter((e) => e.partitions.includes(partition))
      .map((e) => {
        const st = this.store.origin(e.cluster !== undefined ? `${e.cluster}/${e.node}` : e.node);
        const v = st !== undefined && st.up ? this.sumOf(st, metric) : null;
        return { node: e.node, value: v !== null && Number.isFinite(v) ? v : null, up: e.up, jobs: e.jobs };
      });
    return rows.sort((a, b) => (b.value ?? -Infinity) - (a.value ?? -Infinity) || (a.node < b.node ? -1 : 1));
  }

  private readonly metricIds = new WeakMap<OriginState, Map<string, { decoder: DeltaDecoder; version: number; ids: number[] }>>();

  /**
   * The sum of a node's series called `metric` whose labels pass `keep` (`keepKey` names that
   * filter in the cache), or null when it has none. Their ids are found again only when the node's
   * definitions change, so a call is a lookup and a few additions.
   */
  sumOf(st: OriginState, metric: string, keep: (labels: LabelPairs) => boolean = () => true, keepKey = ""): number | null {
    const d = st.decoded;
    let byName = this.metricIds.get(st);
    if (byName === undefined) this.metricIds.set(st, (byName = new Map()));
    const cacheKey = `${metric}\u0000${keepKey}`;
    let known = byName.get(cacheKey);
    if (known === undefined || known.decoder !== d || known.version !== d.definitionsVersion) {
      const ids: number[] = [];
      for (let k = 0; k < d.capacity; k++) {
        const def = d.def(k);
        if (def !== undefined && def.name === metric && keep(def.labels)) ids.push(k);
      }
      known = { decoder: d, version: d.definitionsVersion, ids };
      if (byName.size >= 32) byName.clear();
      byName.set(cacheKey, known);
    }
    if (known.ids.length === 0) return null;
    let sum = 0;
    for (const id of known.ids) sum += d.value(id);
    return sum;
  }

  private factsOf(st: OriginState): Facts {
    const d = st.decoded;
    const known = this.facts.get(st);
    if (known !== undefined && known.decoder === d && known.version === d.definitionsVersion) return known;
    const cpus = new Set<string>();
    const gpus = new Set<string>();
    const jobs = new Set<string>();
    let memoryId = -1;
    let gpuModel: string | null = null;
    let os: string | null = null;
    let kernel: string | null = null;
    let arch: string | null = null;
    let slurm: Record<string, string> | null = null;
    for (let id = 0; id < d.capacity; id++) {
      const def = d.def(id);
      if (def === undefined) continue;
      const label = (k: string): string | undefined => def.labels.find(([n]) => n === k)?.[1];
      const name = def.name;
      if (name === "node_cpu_seconds_total") cpus.add(label("cpu") ?? "");
      else if (name === "node_memory_MemTotal_bytes") memoryId = id;
      else if (name.startsWith("DCGM_FI_DEV_")) {
        gpus.add(label("gpu") ?? label("UUID") ?? "");
        gpuModel ??= label("modelName") ?? null;
      } else if (name === "node_os_info") os = label("pretty_name") || label("name") || null;
      else if (name === "node_uname_info") {
        kernel = label("release") ?? null;
        arch = label("machine") ?? null;
      } else if (name === "banyan_node_slurm_info") slurm = Object.fromEntries(def.labels);
      else if (name === "banyan_job_info") {
        const job = label("job_id");
        if (job !== undefined) jobs.add(job);
      }
    }
    const f: Facts = { decoder: d, version: d.definitionsVersion, cpus: cpus.size > 0 ? cpus.size : null, memoryId, gpus: gpus.size > 0 ? gpus.size : null, gpuModel, os, kernel, arch, slurm, jobs: [...jobs].sort() };
    this.facts.set(st, f);
    return f;
  }
}
