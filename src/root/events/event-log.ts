import { createHash } from "node:crypto";
import type { Registry } from "prom-client";
import { z } from "zod";
import { counter } from "../../core/metric-names.js";

export const EVENT_TYPES = [
  "node_down",
  "node_up",
  "node_joined",
  "node_left",
  "failover",
  "heal",
  "root_restart",
  "tree_degraded",
  "tree_restored",
  "job_start",
  "job_end",
  "job_straggler",
  "job_verdict",
  "job_action",
  "resync_storm",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];
export type Severity = "info" | "warning" | "critical";

/** One moment a root saw. `id` is stable: the same moment seen by two roots has the same id. */
export interface RootEvent {
  readonly id: string;
  readonly type: EventType;
  /** ISO 8601. */
  readonly time: string;
  readonly severity: Severity;
  /** The root that saw it. */
  readonly root: string;
  readonly node?: string;
  readonly job?: string;
  /** The node's or job's labels (tree, partition, user…), what destinations filter on. */
  readonly labels: Readonly<Record<string, string>>;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface EventFilter {
  readonly type?: readonly EventType[];
  readonly node?: string;
  readonly job?: string;
  /** At a central root: only this cluster's events. */
  readonly cluster?: string;
  readonly sinceMs?: number;
  readonly limit?: number;
}

/**
 * The root's recent events: a ring of the last `capacity` (10,000 by default, ~3 MB), listeners
 * (the outputs, the SSE stream), and `banyan_events_total{type}` for Prometheus and Grafana. Cost:
 * one object and one hash per event; events come per node state change, never per sample.
 */
export class EventLog {
  private readonly ring: (RootEvent | undefined)[];
  private next = 0;
  private count = 0;
  private readonly listeners = new Set<(e: RootEvent) => void>();
  private readonly total;
  /** Ids of the events taken from clusters lately (insertion order: the oldest go first past `capacity`). */
  private readonly ingested = new Set<string>();

  constructor(
    private readonly root: string,
    registry: Registry,
    private readonly capacity = 10_000,
  ) {
    this.ring = new Array<RootEvent | undefined>(capacity);
    this.total = counter(registry, "banyan_events_total", "Events this root saw (node, tree and job state changes), by type.", ["type"] as const);
  }

  /**
   * Records an event. `moment` is what makes its id stable across roots: something every root that
   * sees the same moment agrees on (the node's own sample time, its failover count, the job id).
   */
  emit(type: EventType, e: { node?: string; job?: string; labels?: Record<string, string>; severity?: Severity; details?: Record<string, unknown>; moment?: string | number }, atMs = Date.now()): RootEvent {
    const id = createHash("sha256")
      .update(`${type}\0${e.node ?? ""}\0${e.job ?? ""}\0${e.moment ?? atMs}`)
      .digest("hex")
      .slice(0, 16);
    const event: RootEvent = {
      id,
      type,
      time: new Date(atMs).toISOString(),
      severity: e.severity ?? "info",
      root: this.root,
      ...(e.node !== undefined ? { node: e.node } : {}),
      ...(e.job !== undefined ? { job: e.job } : {}),
      labels: e.labels ?? {},
      ...(e.details !== undefined ? { details: e.details } : {}),
    };
    this.record(event);
    return event;
  }

  /**
   * An event a cluster's root saw, arrived at this central root: kept and passed on like its own,
   * with the `cluster` label (the link's, whatever the event said). The same moment seen by two of
   * the cluster's roots has one id, and is kept once.
   */
  ingest(e: RootEvent, cluster: string): void {
    const key = `${cluster}/${e.id}`;
    if (this.ingested.has(key)) return;
    this.ingested.add(key);
    if (this.ingested.size > this.capacity) this.ingested.delete(this.ingested.values().next().value!);
    this.record({ ...e, labels: { ...e.labels, cluster } });
  }

  private record(event: RootEvent): void {
    this.ring[this.next] = event;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
    this.total.inc({ type: event.type });
    for (const l of this.listeners) l(event);
  }

  /** Recent events, oldest first, filtered. */
  recent(f: EventFilter = {}): RootEvent[] {
    const out: RootEvent[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let k = 0; k < this.count; k++) {
      const e = this.ring[(start + k) % this.capacity]!;
      if (matches(e, f)) out.push(e);
    }
    return f.limit !== undefined && out.length > f.limit ? out.slice(out.length - f.limit) : out;
  }

  /** Calls `listener` with every event from now on; returns the unsubscribe. */
  subscribe(listener: (e: RootEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

export function matches(e: RootEvent, f: EventFilter): boolean {
  if (f.type !== undefined && !f.type.includes(e.type)) return false;
  if (f.node !== undefined && e.node !== f.node) return false;
  if (f.job !== undefined && e.job !== f.job) return false;
  if (f.cluster !== undefined && e.labels.cluster !== f.cluster) return false;
  if (f.sinceMs !== undefined && Date.parse(e.time) < f.sinceMs) return false;
  return true;
}

/** An events query from a URL's parameters (`type` repeated or comma-separated, `node`, `job`, `cluster`, `since` ISO or Unix s, `limit`); a string says what is wrong. */
export function eventFilterOf(params: URLSearchParams): EventFilter | string {
  const types = params.getAll("type").flatMap((t) => t.split(",")).filter((t) => t !== "");
  for (const t of types) if (!(EVENT_TYPES as readonly string[]).includes(t)) return `unknown event type ${JSON.stringify(t.slice(0, 40))}: expected one of ${EVENT_TYPES.join(", ")}`;
  const since = params.get("since");
  let sinceMs: number | undefined;
  if (since !== null) {
    sinceMs = /^\d+(\.\d+)?$/.test(since) ? Number(since) * 1000 : Date.parse(since);
    if (!Number.isFinite(sinceMs)) return `since ${JSON.stringify(since.slice(0, 40))}: expected an RFC 3339 time or Unix seconds`;
  }
  const limitText = params.get("limit");
  const limit = limitText === null ? undefined : Number(limitText);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) return `limit ${JSON.stringify(limitText!.slice(0, 20))}: expected a positive whole number`;
  return {
    ...(types.length > 0 ? { type: types as EventType[] } : {}),
    ...(params.get("node") !== null ? { node: params.get("node")! } : {}),
    ...(params.get("job") !== null ? { job: params.get("job")! } : {}),
    ...(params.get("cluster") !== null ? { cluster: params.get("cluster")! } : {}),
    ...(sinceMs !== undefined ? { sinceMs } : {}),
    ...(limit !== undefined ? { limit } : {}),
  };
}

/** A destination's filter: label name → regexp the label's value must match whole (config: `match`). */
export const labelMatchSchema = z
  .record(
    z.string(),
    z.string().refine((r) => {
      try {
        new RegExp(`^(?:${r})$`);
        return true;
      } catch {
        return false;
      }
    }, "expected a regular expression"),
  )
  .default({});

/** The filter of `labelMatchSchema` as a test of a label set (empty: everything passes). */
export function labelMatcher(match: Readonly<Record<string, string>>): (labels: Readonly<Record<string, string>>) => boolean {
  const rules = Object.entries(match).map(([k, r]) => [k, new RegExp(`^(?:${r})$`)] as const);
  return (labels) => rules.every(([k, r]) => r.test(labels[k] ?? ""));
}
