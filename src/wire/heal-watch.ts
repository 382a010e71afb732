import { Backoff } from "../core/backoff.js";
import type { ParentProbe } from "./parent-probe.js";
import { probeBackoffCapMs } from "./tree-timing.js";

export interface HealWatchOptions {
  /** The planned parent must answer probes this long before the node moves back to it. */
  readonly healAfterMs: number;
  /** How often the planned parent is probed while it answers. */
  readonly probeIntervalMs: number;
  /** A probe with no answer this long counts as a miss. */
  readonly probeTimeoutMs: number;
}

/**
 * Watches the planned parent while a node reports through a fallback: probes it every
 * `probeIntervalMs` while it answers (backing off, up to half of `healAfterMs` (1-30 s), while it does not) and calls
 * `healed` once it has answered for `healAfterMs` without a miss. A miss starts the count again,
 * so a flapping parent never takes its children back.
 */
export class HealWatch {
  private timer: NodeJS.Timeout | null = null;
  private healthySinceMs: number | null = null;
  private readonly backoff: Backoff;
  /** No probe, so no move back, before this (ms since the epoch): kept across stop(). */
  private holdUntilMs = 0;

  constructor(
    private readonly prober: ParentProbe,
    private readonly opts: HealWatchOptions,
  ) {
    this.backoff = new Backoff(1000, probeBackoffCapMs(opts.healAfterMs));
  }

  /**
   * Probes `address` after `probeIntervalMs` (nothing when already watching). `stillAway` is asked
   * before and after each probe: once it says no, the watch ends without calling `healed`.
   */
  start(address: string, stillAway: () => boolean, healed: (answeredForMs: number) => void): void {
    this.schedule(Math.max(this.opts.probeIntervalMs, this.heldMs()), address, stillAway, healed);
  }

  /** No move back before `untilMs`: a watch started meanwhile first probes then. */
  holdUntil(untilMs: number): void {
    this.holdUntilMs = Math.max(this.holdUntilMs, untilMs);
  }

  /** How long the hold has still to run (0: none). */
  heldMs(): number {
    return Math.max(0, this.holdUntilMs - Date.now());
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.healthySinceMs = null;
  }

  close(): void {
    this.stop();
    this.prober.close();
  }

  private schedule(delayMs: number, address: string, stillAway: () => boolean, healed: (answeredForMs: number) => void): void {
    if (this.timer !== null) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.probe(address, stillAway, healed);
    }, delayMs);
    this.timer.unref();
  }

  private async probe(address: string, stillAway: () => boolean, healed: (answeredForMs: number) => void): Promise<void> {
    if (!stillAway()) return;
    const ok = await this.prober.probe(address, this.opts.probeTimeoutMs);
    if (!stillAway()) return;
    if (!ok) {
      this.healthySinceMs = null;
      this.schedule(this.backoff.nextDelayMs(), address, stillAway, healed);
      return;
    }
    this.backoff.reset();
    const now = Date.now();
    this.healthySinceMs ??= now;
    if (now - this.healthySinceMs >= this.opts.healAfterMs) {
      const forMs = now - this.healthySinceMs;
      this.healthySinceMs = null;
      healed(forMs);
      return;
    }
    this.schedule(this.opts.probeIntervalMs, address, stillAway, healed);
  }
}
