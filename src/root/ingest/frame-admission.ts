import type { LimitedWarning } from "../../core/logger.js";
import type { Payload } from "../../series/payload.js";
import { definedCount } from "../../series/payload.js";
import type { ClusterQuotas } from "./cluster-quotas.js";
import { MemoryBudget } from "./memory-budget.js";
import type { OriginState } from "./origin-state.js";
import { clusterOf } from "../exposition/origin-identity.js";

/**
 * What the store may take on: nothing new past the root's memory budget (no new origin, no origin
 * that grows; what it holds keeps flowing), and at a central root, nothing past a cluster's limits
 * (ClusterQuotas: bytes per second, origins, series). Each refusal is a reason the store counts; the
 * origin is asked for a keyframe later.
 */
export class FrameAdmission {
  readonly memory: MemoryBudget;
  private quotas: ClusterQuotas | null = null;

  constructor(
    budgetBytes: number | null | undefined,
    private readonly memoryRefused: LimitedWarning,
  ) {
    this.memory = new MemoryBudget(budgetBytes);
    this.memory.sample();
  }

  setClusterQuotas(quotas: ClusterQuotas): void {
    this.quotas = quotas;
  }

  /** False when the frame's cluster is past its bytes per second (the frame is dropped; its gap brings a keyframe later). */
  bytes(origin: string, n: number, nowMs: number): boolean {
    const cluster = this.quotas !== null ? clusterOf(origin) : null;
    return cluster === null || this.quotas!.takeBytes(cluster, n, nowMs);
  }

  /** Whether a new origin may be made (its cluster's origin count is taken when it may). */
  newOrigin(name: string, nowMs: number): boolean {
    const cluster = this.quotas !== null ? clusterOf(name) : null;
    return cluster === null || this.quotas!.addOrigin(cluster, nowMs);
  }

  /** Why a decoded frame may not be applied (memory_budget, cluster_series), or null. */
  refusal(st: OriginState, payload: Payload, key: boolean, nowMs: number): string | null {
    if (this.memory.over && (key ? payload.ids.length + payload.rawIds.length > st.seriesCount : payload.defs.length > 0 || payload.strings.length > 0)) {
      this.memoryRefused.warn({ origin: st.name, budget: this.memory.budget, used: this.memory.used });
      return "memory_budget";
    }
    if (st.cluster !== null && this.quotas !== null) {
      const next = key ? payload.ids.length + payload.rawIds.length : st.seriesCount + definedCount(payload.defs);
      if (!this.quotas.admitSeries(st.cluster, st.seriesCount, next, nowMs)) return "cluster_series";
    }
    return null;
  }

  /** A frame was applied: the origin held `before` series and holds what it holds now. */
  applied(st: OriginState, before: number): void {
    if (st.cluster !== null) this.quotas?.held(st.cluster, before, st.seriesCount);
  }

  /** The origin is forgotten: its cluster gets its share back. */
  forgotten(st: OriginState): void {
    if (st.cluster !== null) this.quotas?.removeOrigin(st.cluster, st.seriesCount);
  }
}
