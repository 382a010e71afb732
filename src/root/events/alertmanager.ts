import type { Registry } from "prom-client";
import { z } from "zod";
import { LimitedWarning, type Logger } from "../../core/logger.js";
import { counter, gauge } from "../../core/metric-names.js";
import { labelMatchSchema, labelMatcher, type EventLog, type RootEvent } from "./event-log.js";

/** `events.alertmanagers[]`: where alerts go, and which (labels matched as anchored regexps). */
export const alertmanagerSchema = z.strictObject({
  /** The Alertmanager's base URL (`http://alertmanager:9093`): alerts go to <url>/api/v2/alerts. */
  url: z.string().url(),
  /** A post not answered this long failed (retried at the next send). */
  timeoutMs: z.number().int().positive().default(5000),
  /** Only alerts whose labels match (label → anchored regexp; default: all). */
  match: labelMatchSchema,
});
export type AlertmanagerConfig = z.infer<typeof alertmanagerSchema>;

interface Alert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
}

interface Tracked {
  readonly alert: Alert;
  /** When it resolved (ms), or null while it fires. */
  resolvedMs: number | null;
  /** A one-shot notice (a job's end): sent until its short endsAt, never "resolved". */
  readonly oneShotUntilMs: number | null;
}

/** Alerts tracked at most (firing and resolved within 15 min); past it the oldest resolved go first. */
const MAX_TRACKED = 20_000;
const RESOLVED_RESEND_MS = 15 * 60_000;
const ONE_SHOT_MS = 5 * 60_000;

/**
 * Conditions as Alertmanager alerts, the way Prometheus sends them (API v2, POST /api/v2/alerts to
 * every Alertmanager listed, not load-balanced): a firing alert is re-sent every `resendMs` (60 s)
 * with endsAt = now + 4 × resendMs, so a root that dies lets it expire; a resolved one is sent with
 * endsAt = its resolution time, and re-sent for 15 minutes. node_down fires BanyanNodeDown until the
 * node is up again; tree_degraded fires BanyanTreeDegraded until tree_restored; a job's end is a
 * one-shot BanyanJobEnded (endsAt 5 minutes on) with the job's user among its labels, so a route
 * can mail them. Send failures are counted and logged once a minute; nothing blocks the root.
 */
export class AlertmanagerOutput {
  private readonly alerts = new Map<string, Tracked>();
  private timer: NodeJS.Timeout | null = null;
  private pending: NodeJS.Timeout | null = null;
  private unsubscribe: (() => void) | null = null;
  private readonly failed: LimitedWarning;
  private readonly m;
  private readonly matchers: { url: string; timeoutMs: number; takes: (labels: Readonly<Record<string, string>>) => boolean }[];

  constructor(
    targets: readonly AlertmanagerConfig[],
    private readonly resendMs: number,
    /** The root's status page, the alerts' generatorURL. */
    private readonly generatorURL: string,
    log: Logger,
    registry: Registry,
    /** The clock every send reads (its own batches and re-sends too): a test's fixed time. */
    private readonly clock: () => number = Date.now,
  ) {
    this.matchers = targets.map((t) => ({ url: t.url.replace(/\/+$/, ""), timeoutMs: t.timeoutMs, takes: labelMatcher(t.match) }));
    this.failed = new LimitedWarning(log, "sending alerts to an Alertmanager failed (retried at the next send)", 60_000);
    this.m = {
      sent: counter(registry, "banyan_alertmanager_alerts_sent_total", "Alerts posted to an Alertmanager (each re-send counts).", ["url"] as const),
      errors: counter(registry, "banyan_alertmanager_errors_total", "Posts to an Alertmanager that failed.", ["url"] as const),
      // Set at each send (a reload makes a new output; a collect callback would keep reading the old one).
      active: gauge(registry, "banyan_alertmanager_alerts", "Alerts this root tracks (firing, or resolved in the last 15 minutes).", ["state"] as const),
    };
  }

  start(events: EventLog): void {
    this.unsubscribe = events.subscribe((e) => this.onEvent(e));
    this.timer = setInterval(() => void this.sendAll(), this.resendMs);
    this.timer.unref();
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.pending) clearTimeout(this.pending);
  }

  private onEvent(e: RootEvent, now = Date.parse(e.time)): void {
    const fire = (alertname: string, key: string, summary: string): void => {
      const existing = this.alerts.get(key);
      if (existing !== undefined && existing.resolvedMs === null) return;
      this.track(key, {
        // Not the root among its labels: the same node down seen by two roots is one alert at Alertmanager.
        alert: { labels: { alertname, severity: e.severity, ...withoutRoot(e.labels) }, annotations: { summary, event_id: e.id, root: e.root }, startsAt: e.time, endsAt: "", generatorURL: this.generatorURL },
        resolvedMs: null,
        oneShotUntilMs: null,
      });
    };
    const resolve = (key: string): void => {
      const a = this.alerts.get(key);
      if (a !== undefined && a.resolvedMs === null) a.resolvedMs = now;
    };
    switch (e.type) {
      case "node_down":
        fire("BanyanNodeDown", `node\0${e.node}`, `${e.node} has sent nothing to ${e.root} since ${String(e.details?.["last_sample"] ?? "")}`);
        break;
      case "node_up":
      case "node_joined":
      case "node_left":
        resolve(`node\0${e.node}`);
        break;
      case "tree_degraded":
        fire("BanyanTreeDegraded", `tree\0${e.labels["tree"]}`, `tree ${e.labels["tree"]}: ${String(e.details?.["up"])} of ${String(e.details?.["nodes"])} nodes up at ${e.root}`);
        break;
      case "tree_restored":
        resolve(`tree\0${e.labels["tree"]}`);
        break;
      case "job_straggler":
        if (e.details?.["recovered"] === true) resolve(`straggler\0${e.job}\0${e.node}`);
        else fire("BanyanJobStraggler", `straggler\0${e.job}\0${e.node}`, `${e.node} of job ${e.job}: ${String(e.details?.["metric"])} at ${Number(e.details?.["value"]).toFixed(2)}, the job's median ${Number(e.details?.["median"]).toFixed(2)}`);
        break;
      case "job_end": {
        for (const [key, a] of this.alerts) if (key.startsWith(`straggler\0${e.job}\0`) && a.resolvedMs === null) a.resolvedMs = now;
        const d = e.details ?? {};
        const annotations: Record<string, string> = { summary: `job ${e.job} of ${e.labels["user"] ?? "?"} ended after ${Math.round(Number(d["duration_s"] ?? 0))} s on ${(d["nodes"] as string[] | undefined)?.length ?? 0} nodes`, event_id: e.id };
        for (const k of ["duration_s", "cpu_seconds", "memory_peak_bytes", "io_read_bytes", "io_written_bytes", "gpus", "gpu_utilization_percent"]) if (d[k] !== undefined && d[k] !== null) annotations[k] = String(d[k]);
        this.track(`job\0${e.job}`, { alert: { labels: { alertname: "BanyanJobEnded", severity: "info", ...withoutRoot(e.labels) }, annotations: { ...annotations, root: e.root }, startsAt: e.time, endsAt: new Date(now + ONE_SHOT_MS).toISOString(), generatorURL: this.generatorURL }, resolvedMs: null, oneShotUntilMs: now + ONE_SHOT_MS });
        break;
      }
      case "job_verdict": {
        // One-shot, with the user's label for a route that mails them; the notes are its annotations.
        const d = e.details ?? {};
        const notes = (d["notes"] as string[] | undefined) ?? [];
        const annotations: Record<string, string> = { summary: `job ${e.job} of ${e.labels["user"] ?? "?"}: score ${String(d["score"] ?? "unknown")}${notes.length > 0 ? `, ${notes.length} note(s)` : ""}`, event_id: e.id, root: e.root };
        if (notes.length > 0) annotations["description"] = notes.join("\n");
        if (d["score"] !== undefined && d["score"] !== null) annotations["score"] = String(d["score"]);
        this.track(`verdict\0${e.job}`, { alert: { labels: { alertname: "BanyanJobVerdict", severity: e.severity, ...withoutRoot(e.labels) }, annotations, startsAt: e.time, endsAt: new Date(now + ONE_SHOT_MS).toISOString(), generatorURL: this.generatorURL }, resolvedMs: null, oneShotUntilMs: now + ONE_SHOT_MS });
        break;
      }
      default:
        return;
    }
    // Changes leave at once (batched over 100 ms: a rack that goes down is one post, not hundreds).
    this.pending ??= setTimeout(() => {
      this.pending = null;
      void this.sendAll();
    }, 100);
  }

  private track(key: string, t: Tracked): void {
    if (!this.alerts.has(key) && this.alerts.size >= MAX_TRACKED) {
      for (const [k, a] of this.alerts) {
        if (a.resolvedMs !== null || a.oneShotUntilMs !== null) {
          this.alerts.delete(k);
          break;
        }
      }
      if (this.alerts.size >= MAX_TRACKED) return;
    }
    this.alerts.delete(key);
    this.alerts.set(key, t);
  }

  /** Posts every tracked alert to every Alertmanager (the ones its filter takes). */
  async sendAll(now = this.clock()): Promise<void> {
    const body: Alert[] = [];
    for (const [key, a] of this.alerts) {
      if (a.oneShotUntilMs !== null) {
        if (now > a.oneShotUntilMs) {
          this.alerts.delete(key);
          continue;
        }
      } else if (a.resolvedMs !== null) {
        if (now - a.resolvedMs > RESOLVED_RESEND_MS) {
          this.alerts.delete(key);
          continue;
        }
        a.alert.endsAt = new Date(a.resolvedMs).toISOString();
      } else {
        a.alert.endsAt = new Date(now + 4 * this.resendMs).toISOString();
      }
      body.push(a.alert);
    }
    let firing = 0;
    for (const a of this.alerts.values()) if (a.resolvedMs === null && a.oneShotUntilMs === null) firing++;
    this.m.active.set({ state: "firing" }, firing);
    this.m.active.set({ state: "resolved_or_notice" }, this.alerts.size - firing);
    if (body.length === 0) return;
    await Promise.all(
      this.matchers.map(async (t) => {
        const mine = body.filter((a) => t.takes(a.labels));
        if (mine.length === 0) return;
        try {
          const res = await fetch(`${t.url}/api/v2/alerts`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(mine), signal: AbortSignal.timeout(t.timeoutMs) });
          await res.arrayBuffer();
          if (!res.ok) throw new Error(`HTTP ${res.status}`);
          this.m.sent.inc({ url: t.url }, mine.length);
        } catch (err) {
          this.m.errors.inc({ url: t.url });
          this.failed.warn({ url: t.url, err: (err as Error).message });
        }
      }),
    );
  }
}

function withoutRoot(labels: Readonly<Record<string, string>>): Record<string, string> {
  const { root: _root, ...rest } = labels;
  return rest;
}
