import type { Registry } from "prom-client";
import { counter, gauge } from "../../core/metric-names.js";
import { clusterLimit, type ClusterLimit, type ClustersConfig } from "../outputs/central/central-config.js";

interface ClusterUse {
  readonly name: string;
  limit: ClusterLimit;
  series: number;
  origins: number;
  /** Token bucket of payload bytes: refilled at maxBytesPerS, holding two seconds' worth at most. */
  tokens: number;
  refilledMs: number;
}

/**
 * What each cluster may cost a central root: series held, origins, and payload bytes per second.
 * A frame past a limit is refused and counted (`banyan_central_refused_total{cluster,reason}`); the
 * origin asks for a keyframe later, under the root's resync budget, so a cluster over its bytes
 * arrives later and coarser while the others flow as before. Clusters are the central topology's
 * (OriginAuthority lets a link carry only its own cluster's names), so this map is bounded by it.
 */
export class ClusterQuotas {
  private readonly use = new Map<string, ClusterUse>();
  private readonly refused;

  constructor(
    private config: ClustersConfig,
    registry: Registry,
  ) {
    this.refused = counter(registry, "banyan_central_refused_total", "Frames of a cluster refused at this central root, by reason (bytes_per_s, series, origins).", ["cluster", "reason"] as const);
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the gauges read the quotas when scraped
    const self = this;
    gauge(registry, "banyan_central_cluster_series", "Series each cluster's origins hold at this central root.", ["cluster"] as const, function () {
      this.reset();
      for (const u of self.use.values()) this.set({ cluster: u.name }, u.series);
    });
    gauge(registry, "banyan_central_cluster_origins", "Origins (nodes and root summaries) each cluster has at this central root.", ["cluster"] as const, function () {
      this.reset();
      for (const u of self.use.values()) this.set({ cluster: u.name }, u.origins);
    });
  }

  setConfig(config: ClustersConfig): void {
    this.config = config;
    for (const u of this.use.values()) u.limit = clusterLimit(config, u.name);
  }

  /** Takes a frame's payload bytes from the cluster's budget; false: over it, refused. */
  takeBytes(cluster: string, bytes: number, nowMs: number): boolean {
    const u = this.of(cluster, nowMs);
    const cap = 2 * u.limit.maxBytesPerS;
    u.tokens = Math.min(cap, u.tokens + ((nowMs - u.refilledMs) * u.limit.maxBytesPerS) / 1000);
    u.refilledMs = nowMs;
    if (u.tokens < bytes) return this.refuse(u, "bytes_per_s");
    u.tokens -= bytes;
    return true;
  }

  /** Whether the cluster may have one more origin here (counted when it may). */
  addOrigin(cluster: string, nowMs: number): boolean {
    const u = this.of(cluster, nowMs);
    if (u.origins >= u.limit.maxOrigins) return this.refuse(u, "origins");
    u.origins++;
    return true;
  }

  removeOrigin(cluster: string, seriesHeld: number): void {
    const u = this.use.get(cluster);
    if (u === undefined) return;
    u.origins--;
    u.series -= seriesHeld;
  }

  /** Whether an origin holding `held` series may hold `next`: its cluster stays under maxSeries. */
  admitSeries(cluster: string, held: number, next: number, nowMs: number): boolean {
    const u = this.of(cluster, nowMs);
    if (next > held && u.series - held + next > u.limit.maxSeries) return this.refuse(u, "series");
    return true;
  }

  /** An origin of the cluster went from `before` to `after` series. */
  held(cluster: string, before: number, after: number): void {
    const u = this.use.get(cluster);
    if (u !== undefined) u.series += after - before;
  }

  /** Per cluster: series and origins held, and the limits. */
  report(): { cluster: string; series: number; origins: number; limits: ClusterLimit }[] {
    return [...this.use.values()].map((u) => ({ cluster: u.name, series: u.series, origins: u.origins, limits: u.limit }));
  }

  private of(cluster: string, nowMs: number): ClusterUse {
    let u = this.use.get(cluster);
    if (u === undefined) {
      const limit = clusterLimit(this.config, cluster);
      u = { name: cluster, limit, series: 0, origins: 0, tokens: 2 * limit.maxBytesPerS, refilledMs: nowMs };
      this.use.set(cluster, u);
    }
    return u;
  }

  private refuse(u: ClusterUse, reason: string): false {
    this.refused.inc({ cluster: u.name, reason });
    return false;
  }
}
