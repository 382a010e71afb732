import { isDeepStrictEqual } from "node:util";
import type { Registry } from "prom-client";
import type { Logger } from "../../core/logger.js";
import type { Service } from "../../core/service.js";
import { AlertmanagerOutput, type AlertmanagerConfig } from "./alertmanager.js";
import type { EventLog } from "./event-log.js";
import { JobLog } from "./job-log.js";
import { WebhookOutput, type WebhookConfig } from "./webhook.js";

/** The root's `events` config, as its destinations read it. */
export interface EventSinksConfig {
  readonly alertmanagers: readonly AlertmanagerConfig[];
  readonly resendMs: number;
  readonly webhooks: readonly WebhookConfig[];
  /** The job-end log's file (read at start only). */
  readonly jobLog?: string | undefined;
}

/**
 * Where the root's events go besides its own log and stream: webhooks and the job-end log. A
 * reload whose webhooks changed makes the new ones first (a bad secret file refuses the reload and
 * keeps the old ones), then stops the old.
 */
export class EventSinks implements Service<EventSinksConfig> {
  readonly name = "webhooks and the job-end log";
  private webhooks: WebhookOutput[] = [];
  private webhooksConfig: readonly WebhookConfig[] | null = null;
  private readonly jobLog: JobLog | null;

  constructor(
    private readonly events: EventLog,
    private readonly config: EventSinksConfig,
    private readonly rootName: string,
    private readonly log: Logger,
    private readonly registry: Registry,
  ) {
    this.jobLog = config.jobLog !== undefined ? new JobLog(config.jobLog, log.child({ part: "job-log" })) : null;
  }

  start(): void {
    this.reload(this.config);
    this.jobLog?.start(this.events);
  }

  reload(config: EventSinksConfig): void {
    if (isDeepStrictEqual(config.webhooks, this.webhooksConfig)) return;
    const next = config.webhooks.map((w) => new WebhookOutput(w, this.rootName, this.log.child({ part: "webhook" }), this.registry));
    for (const w of this.webhooks) w.stop();
    this.webhooks = next;
    this.webhooksConfig = config.webhooks;
    for (const w of this.webhooks) w.start(this.events);
  }

  async stop(): Promise<void> {
    for (const w of this.webhooks) w.stop();
    await this.jobLog?.stop();
  }
}

/** The Alertmanagers the root's events go to, made again when their list or resend interval changes. */
export class AlertmanagerSink implements Service<EventSinksConfig> {
  readonly name = "alertmanagers";
  private output: AlertmanagerOutput | null = null;
  private current: readonly [readonly AlertmanagerConfig[], number] | null = null;

  constructor(
    private readonly events: EventLog,
    private readonly config: EventSinksConfig,
    /** The root's status page (the alerts' generatorURL), known once its HTTP port is. */
    private readonly statusUrl: () => string,
    private readonly log: Logger,
    private readonly registry: Registry,
  ) {}

  start(): void {
    this.reload(this.config);
  }

  reload(config: EventSinksConfig): void {
    const wanted = [config.alertmanagers, config.resendMs] as const;
    if (isDeepStrictEqual(wanted, this.current)) return;
    this.output?.stop();
    this.output = null;
    this.current = wanted;
    if (config.alertmanagers.length === 0) return;
    this.output = new AlertmanagerOutput(config.alertmanagers, config.resendMs, this.statusUrl(), this.log.child({ part: "alertmanager" }), this.registry);
    this.output.start(this.events);
  }

  stop(): void {
    this.output?.stop();
  }
}
