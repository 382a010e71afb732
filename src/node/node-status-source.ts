import { SeriesType, seriesDef } from "../series/series-def.js";
import type { RelayNode } from "./relay-node.js";
import type { SampleTarget, Source } from "./source.js";

export interface NodeStatus {
  /** The parent the node's stream goes to now. */
  readonly parent: string;
  /** The parent the topology plans. */
  readonly planned: string;
  /** Failovers since the node started. */
  readonly failovers: number;
  /** Failovers in the last hour. */
  readonly failoversLastHour: number;
  /** Wall time of the sampler's last tick, seconds (absent: not reported). */
  readonly lastTickSeconds?: number;
}

/** Ticks over which the longest tick is reported (then the window starts again). */
const TICK_WINDOW = 15;

/**
 * The node's place in the trees as series of its own, so they travel like any metric and any root
 * or Prometheus can tell who is away from its planned parent:
 *   banyan_node_parent_info{parent, planned} 1
 *   banyan_node_away                  1 while the parent is not the planned one (PromQL cannot compare two labels)
 *   banyan_node_failovers_total
 *   banyan_node_failovers_last_hour
 *   banyan_node_tick_max_seconds      the longest tick of the last 15 (collect and encode: how long
 *                                     the node holds a core at once, at most), rounded to 0.1 ms
 */
export class NodeStatusSource implements Source {
  readonly name = "node-status";
  private infoId = -1;
  private infoParent = "";
  private awayId = -1;
  private failoversId = -1;
  private lastHourId = -1;
  private tickMaxId = -1;
  private ticks = 0;
  private tickMax = 0;

  constructor(private readonly status: () => NodeStatus) {}

  /** The status of a node in the trees (agent or dedicated relay) from its uplink, and its sampler's last tick. */
  static of(relay: RelayNode, lastTickSeconds: () => number | undefined): NodeStatusSource {
    const up = relay.uplink;
    return new NodeStatusSource(() => ({ parent: up.currentTarget.name, planned: up.plannedTarget.name, failovers: up.failovers, failoversLastHour: up.failoversLastHour, lastTickSeconds: lastTickSeconds() }));
  }

  collect(target: SampleTarget): void {
    const s = this.status();
    if (s.parent !== this.infoParent) {
      if (this.infoId >= 0) target.remove(this.infoId);
      this.infoId = target.define(
        seriesDef("banyan_node_parent_info", { parent: s.parent, planned: s.planned }, SeriesType.Gauge, {
          help: "The parent this node's stream goes to now, and the one the topology plans.",
        }),
      );
      this.infoParent = s.parent;
    }
    target.set(this.infoId, 1);
    if (this.awayId < 0) this.awayId = target.define(seriesDef("banyan_node_away", {}, SeriesType.Gauge, { help: "1 while this node's stream goes to a parent other than the planned one." }));
    target.set(this.awayId, s.parent === s.planned ? 0 : 1);
    if (this.failoversId < 0) {
      this.failoversId = target.define(seriesDef("banyan_node_failovers_total", {}, SeriesType.Counter, { help: "Moves of this node to a fallback parent after a failure." }));
    }
    target.set(this.failoversId, s.failovers);
    if (this.lastHourId < 0) {
      this.lastHourId = target.define(seriesDef("banyan_node_failovers_last_hour", {}, SeriesType.Gauge, { help: "Failovers of this node in the last hour." }));
    }
    target.set(this.lastHourId, s.failoversLastHour);
    if (s.lastTickSeconds === undefined) return;
    this.tickMax = Math.max(this.tickMax, s.lastTickSeconds);
    if (++this.ticks % TICK_WINDOW !== 0) return;
    if (this.tickMaxId < 0) this.tickMaxId = target.define(seriesDef("banyan_node_tick_max_seconds", {}, SeriesType.Gauge, { help: "The longest sampling tick of the last 15 (collect and encode), seconds." }));
    target.set(this.tickMaxId, Math.round(this.tickMax * 1e4) / 1e4);
    this.tickMax = 0;
  }
}
