import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Logger } from "../../core/logger.js";
import { SeriesType } from "../../series/series-def.js";
import { SeriesWriter } from "../collectors/series-writer.js";
import { BackgroundPoll } from "../background-poll.js";
import type { SampleTarget, Source } from "../../node/source.js";
import { parseAccountsAndUsers, parseCpus, parseFairshare, parseJobs, parseNodeStates, parseNodes, parsePartitionCpus, parseSdiag, type SchedulerSample } from "./scheduler-metrics.js";
import { SLURMCTLD_PAGES, fromSlurmctldPages, type SlurmctldPage } from "./slurmctld-metrics.js";

const run = promisify(execFile);

export interface SlurmSourceOptions {
  /** How often the commands run; the reference exporter advises 30 s (they load slurmctld). */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Directory of sinfo, squeue and sdiag ("" = on PATH). */
  readonly binDir: string;
  /**
   * slurmctld's own metrics (`MetricsType=metrics/openmetrics`, Slurm 25.11+), e.g.
   * `http://slurmctld:6817`: its pages replace squeue, sdiag and sinfo's summaries; "" = off.
   */
  readonly slurmctldUrl?: string;
}

/**
 * Scheduler metrics from the root's host: polls sinfo and squeue (and sdiag when permitted) in the
 * background — never on the sampling path — and hands the sampler the latest answers under
 * prometheus-slurm-exporter's names; with `slurmctldUrl`, slurmctld's own pages (Slurm 25.11+)
 * stand in for squeue, sdiag and sinfo's summaries, and the commands are asked again while they
 * cannot be read. A command that fails keeps nothing stale: its metrics leave
 * and banyan_slurm_up{command} says 0.
 */
export class SlurmSource implements Source {
  readonly name = "slurm";
  private latest: SchedulerSample[] = [];
  private readonly poller: BackgroundPoll;
  private writer: SeriesWriter | null = null;
  private lastLogMs = 0;

  constructor(
    private readonly opts: SlurmSourceOptions,
    private readonly log: Logger,
  ) {
    this.poller = new BackgroundPoll(() => this.pollOnce(), opts.intervalMs);
  }

  /** One poll now (the loop calls it; tests too). */
  async pollOnce(): Promise<void> {
    const out: SchedulerSample[] = [];
    const cmd = async (bin: string, args: string[], parse: (s: string) => SchedulerSample[], quiet = false): Promise<void> => {
      const command = [bin, ...args].join(" ");
      try {
        const { stdout } = await run(this.opts.binDir ? `${this.opts.binDir}/${bin}` : bin, args, { timeout: this.opts.timeoutMs, maxBuffer: 64 * 1024 * 1024 });
        out.push(...parse(stdout), { name: "banyan_slurm_up", labels: { command }, value: 1 });
      } catch (err) {
        out.push({ name: "banyan_slurm_up", labels: { command }, value: 0 });
        const now = Date.now();
        if (!quiet && now - this.lastLogMs > 60_000) {
          this.lastLogMs = now;
          this.log.warn({ command, err: (err as Error).message.split("\n")[0] }, "slurm command failed");
        }
      }
    };
    // slurmctld's own pages where it serves them: one request a page, no command walking every job.
    const pages = await this.slurmctldPages();
    if (pages !== null) out.push(...fromSlurmctldPages(pages));
    else {
      await cmd("sinfo", ["-h", "-o", "%D|%T"], parseNodeStates);
      await cmd("sinfo", ["-h", "-o", "%C"], parseCpus);
      await cmd("sinfo", ["-h", "-o", "%R|%C"], parsePartitionCpus);
      await cmd("squeue", ["-h", "-a", "-r", "-o", "%T|%P|%r", "--states=all"], parseJobs);
      await cmd("squeue", ["-h", "-a", "-r", "-o", "%a|%u|%T|%C", "--states=PENDING,RUNNING,SUSPENDED"], parseAccountsAndUsers);
      await cmd("sdiag", [], parseSdiag);
    }
    if (this.opts.slurmctldUrl) out.push({ name: "banyan_slurm_up", labels: { command: "slurmctld /metrics" }, value: pages !== null ? 1 : 0 });
    // Per node (with its state) and the GPUs of the nodes' GRES: not on slurmctld's pages.
    await cmd("sinfo", ["-h", "-N", "-O", "NodeHost:0|,StateLong:0|,CPUsState:0|,AllocMem:0|,Memory:0|,Gres:0|,GresUsed:0"], parseNodes);
    // Fair share needs slurmdbd: a site without accounting sees banyan_slurm_up{command="sshare …"} 0, and no log line each minute.
    await cmd("sshare", ["-n", "-P", "-o", "account,fairshare"], parseFairshare, true);
    this.latest = out;
  }

  /**
   * Every page of slurmctld's metrics, or null (off, unreachable, or refused: a page that is not 200,
   * as when PrivateData hides it) so that the commands are polled instead; a minute's line says why.
   */
  private async slurmctldPages(): Promise<Partial<Record<SlurmctldPage, string>> | null> {
    const base = this.opts.slurmctldUrl;
    if (!base) return null;
    try {
      const texts = await Promise.all(
        SLURMCTLD_PAGES.map(async (page) => {
          const res = await fetch(`${base.replace(/\/$/, "")}/metrics/${page}`, { signal: AbortSignal.timeout(this.opts.timeoutMs) });
          const text = await res.text();
          if (res.status !== 200) throw new Error(`/metrics/${page}: HTTP ${res.status}`);
          if (text.length > 64 * 1024 * 1024) throw new Error(`/metrics/${page}: past 64 MiB`);
          return [page, text] as const;
        }),
      );
      return Object.fromEntries(texts);
    } catch (err) {
      const now = Date.now();
      if (now - this.lastLogMs > 60_000) {
        this.lastLogMs = now;
        this.log.warn({ url: base, err: (err as Error).message }, "slurmctld's metrics could not be read: sinfo, squeue and sdiag are asked instead");
      }
      return null;
    }
  }

  collect(target: SampleTarget): void {
    this.poller.ensure();
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    for (const s of this.latest) w.put(s.name, s.labels, s.value, s.counter === true ? SeriesType.Counter : SeriesType.Gauge, `Slurm: ${s.name.replace(/^slurm_/, "").replace(/_/g, " ")}`);
    w.end();
  }

  close(): void {
    this.poller.close();
  }
}
