import type { OriginState } from "../ingest/origin-state.js";
import type { JobAggregate, RootJobs } from "./root-jobs.js";
import type { StatusPlan } from "./root-status.js";
import type { RootStore } from "../ingest/root-store.js";
import type { EventLog } from "../events/event-log.js";
import { StragglerWatch, type StragglerConfig } from "./stragglers.js";

export interface EventWatchOptions {
  /** A tree this root terminates is degraded while fewer than this share of its nodes are up here. */
  readonly treeDegradedBelow: number;
  /** After a start, nodes coming up are the root's start (root_restart), not joins or returns. */
  readonly startupMs: number;
  readonly stragglers: StragglerConfig;
  /** A resync storm: more origins than this waiting for their keyframe request. */
  readonly resyncStormAbove: number;
}

/**
 * Turns what the root sees into events: a node down, up again or first seen (node_down, node_up,
 * node_joined), a node that moved to a fallback parent or back (failover, heal: from its own
 * banyan_node_parent_info), a tree whose share of nodes up here falls below the threshold and comes
 * back (tree_degraded, tree_restored), a job that starts or ends (job_start, job_end with its
 * figures), the root's own start, and nodes the topology no longer has (node_left, on reload).
 * Cost: a scan of the origins every few seconds (the parents and the trees), O(nodes).
 */
export class EventWatch {
  private readonly startedMs: number;
  /** Nodes seen up since the start: whether they are up, and their parent as they last said. */
  private readonly known = new Map<string, { up: boolean; parent: string | null; away: boolean }>();
  private readonly degraded = new Set<number>();
  private timer: NodeJS.Timeout | null = null;
  private readonly stragglers: StragglerWatch;
  private storm = false;

  constructor(
    private readonly events: EventLog,
    private readonly store: RootStore,
    private readonly jobs: RootJobs,
    private plan: StatusPlan,
    private readonly opts: EventWatchOptions,
    now = Date.now(),
  ) {
    this.startedMs = now;
    this.stragglers = new StragglerWatch(opts.stragglers);
    store.onNodeChange((change, st) => this.onNode(change, st));
    jobs.onChange((change, job) => this.onJob(change, job));
  }

  /** Says the root started (once its outputs listen), then scans every `everyMs`. */
  start(everyMs = 2000): void {
    this.events.emit("root_restart", { labels: { root: this.plan.root }, details: { trees: [...this.plan.trees] }, moment: this.startedMs }, this.startedMs);
    this.timer = setInterval(() => this.scan(), everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** A reloaded topology: nodes it no longer has left; the trees' membership follows. */
  setPlan(plan: StatusPlan, now = Date.now()): void {
    for (const [node] of this.plan.treeOf) if (!plan.treeOf.has(node)) this.events.emit("node_left", { node, labels: this.nodeLabels(node), details: { reason: "removed from the topology" }, moment: now }, now);
    this.plan = plan;
  }

  /** Failovers and heals from the nodes' own parents, and the trees' shares (also what the timer runs). */
  scan(now = Date.now()): void {
    for (const name of this.store.originNames) {
      const st = this.store.origin(name)!;
      const k = this.known.get(name);
      if (k === undefined || !st.up) continue;
      const { parent, planned } = st.nodeStatus();
      const plannedHere = this.plan.plannedParent.get(name) ?? planned;
      if (parent !== null && k.parent !== null && parent !== k.parent) {
        const type = parent === plannedHere ? "heal" : "failover";
        this.events.emit(type, { node: name, labels: this.nodeLabels(name), severity: type === "failover" ? "warning" : "info", details: { from: k.parent, to: parent, planned: plannedHere }, moment: `${k.parent}>${parent}@${st.lastSampleMs}` }, now);
      }
      if (parent !== null) k.parent = parent;
    }
    const { found, recovered } = this.stragglers.scan(this.store, now);
    for (const s of found) {
      this.events.emit("job_straggler", { node: s.node, job: s.job, labels: s.labels, severity: "warning", details: { metric: s.metric, value: s.value, median: s.median }, moment: `${s.metric}@${Math.floor(now / 60_000)}` }, now);
    }
    for (const s of recovered) {
      this.events.emit("job_straggler", { node: s.node, job: s.job, labels: s.labels, details: { metric: s.metric, value: s.value, median: s.median, recovered: true }, moment: `${s.metric}@${Math.floor(now / 60_000)}:ok` }, now);
    }
    const waiting = this.store.resyncsWaiting;
    if (!this.storm && waiting > this.opts.resyncStormAbove) {
      this.storm = true;
      this.events.emit("resync_storm", { labels: { root: this.plan.root }, severity: "warning", details: { waiting, above: this.opts.resyncStormAbove }, moment: Math.floor(now / 1000) }, now);
    } else if (this.storm && waiting < this.opts.resyncStormAbove / 2) {
      this.storm = false;
      this.events.emit("resync_storm", { labels: { root: this.plan.root }, details: { waiting, ended: true }, moment: `${Math.floor(now / 1000)}:end` }, now);
    }
    if (now - this.startedMs < this.opts.startupMs) return;
    for (const tree of this.plan.trees) {
      const all = this.plan.nodesOfTree.get(tree) ?? [];
      if (all.length === 0) continue;
      let up = 0;
      for (const n of all) if (this.store.origin(n)?.up === true) up++;
      const share = up / all.length;
      const labels = { tree: String(tree), root: this.plan.root };
      if (share < this.opts.treeDegradedBelow && !this.degraded.has(tree)) {
        this.degraded.add(tree);
        this.events.emit("tree_degraded", { labels, severity: "critical", details: { up, nodes: all.length, share, below: this.opts.treeDegradedBelow }, moment: `${tree}@${Math.floor(now / 1000)}` }, now);
      } else if (share >= this.opts.treeDegradedBelow && this.degraded.has(tree)) {
        this.degraded.delete(tree);
        this.events.emit("tree_restored", { labels, details: { up, nodes: all.length, share }, moment: `${tree}@${Math.floor(now / 1000)}` }, now);
      }
    }
  }

  private onNode(change: "up" | "down" | "left", st: OriginState, now = Date.now()): void {
    const name = st.name;
    const k = this.known.get(name);
    if (change === "up") {
      const parent = st.nodeStatus().parent;
      if (k === undefined) {
        this.known.set(name, { up: true, parent, away: false });
        // At the root's own start every node "comes up": that is root_restart, not a join.
        if (now - this.startedMs >= this.opts.startupMs) this.events.emit("node_joined", { node: name, labels: this.nodeLabels(name), moment: st.lastSampleMs }, now);
      } else if (!k.up) {
        k.up = true;
        k.parent = parent;
        // Back from another parent (it left with a handover): its heal or failover says so, not node_up.
        if (!k.away) this.events.emit("node_up", { node: name, labels: this.nodeLabels(name), moment: st.lastSampleMs }, now);
        k.away = false;
      }
      return;
    }
    if (k === undefined || !k.up) return;
    k.up = false;
    k.away = change === "left";
    // A node that moved to another parent is up there: not down (its failover shows where it went).
    if (change === "down") this.events.emit("node_down", { node: name, labels: this.nodeLabels(name), severity: "warning", details: { last_sample: new Date(st.lastSampleMs).toISOString() }, moment: st.lastSampleMs }, now);
  }

  private onJob(change: "start" | "end", job: JobAggregate, now = Date.now()): void {
    const labels = { job_id: job.job_id, user: job.user, partition: job.partition, account: job.account };
    if (change === "start") {
      this.events.emit("job_start", { job: job.job_id, labels, details: { nodes: job.nodes }, moment: "start" }, now);
      return;
    }
    const durationS = (Date.parse(job.last_seen) - Date.parse(job.first_seen)) / 1000;
    this.events.emit(
      "job_end",
      {
        job: job.job_id,
        labels,
        details: {
          nodes: job.nodes,
          started_at: job.first_seen,
          duration_s: durationS,
          cpu_seconds: job.cpu_seconds,
          cpus_allocated: job.cpus_allocated > 0 ? job.cpus_allocated : null,
          // CPU-seconds used over allocated (CPUs × duration), when the nodes said their CPUs.
          cpu_efficiency: job.cpu_seconds !== null && job.cpus_allocated > 0 && durationS > 0 ? job.cpu_seconds / (job.cpus_allocated * durationS) : null,
          memory_peak_bytes: job.memory_peak_bytes,
          io_read_bytes: job.io_read_bytes,
          io_written_bytes: job.io_written_bytes,
          gpus: job.gpus,
          gpu_utilization_percent: job.gpu_utilization_percent,
          ...this.gpuAndEnergy(job.job_id),
          // Nodes whose cgroup accounting was missing: the figures above are unknown (null), not 0.
          ...(job.unaccounted_nodes.length > 0 ? { unaccounted_nodes: job.unaccounted_nodes } : {}),
        },
        moment: "end",
      },
      now,
    );
  }

  /** The job's GPUs never busy, and the energy attributed to it on its nodes here (for the usage report). */
  private gpuAndEnergy(jobId: string): { idle_gpus?: number; energy_joules?: number } {
    const nodes = this.jobs.nodesOf(jobId);
    const gpus = nodes.flatMap((n) => n.gpus);
    const known = gpus.length > 0 && gpus.every((g) => g.busy_seconds !== null);
    let joules: number | null = null;
    for (const n of nodes) for (const j of Object.values(n.energy_joules)) joules = (joules ?? 0) + j;
    return { ...(known ? { idle_gpus: gpus.filter((g) => g.busy_seconds === 0).length } : {}), ...(joules !== null ? { energy_joules: joules } : {}) };
  }

  private nodeLabels(node: string): Record<string, string> {
    const tree = this.plan.treeOf.get(node);
    const sw = this.plan.switchOf?.get(node);
    return { ...this.plan.labelsOf?.get(node), instance: node, ...(tree !== undefined ? { tree: String(tree) } : {}), ...(sw !== undefined ? { switch: sw } : {}), root: this.plan.root };
  }
}
