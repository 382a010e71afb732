import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Logger } from "../../core/logger.js";
import { SeriesType } from "../../series/series-def.js";
import { SeriesWriter } from "../collectors/series-writer.js";
import { BackgroundPoll } from "../background-poll.js";
import type { SampleTarget, Source } from "../../node/source.js";
import { parseAccountsAndUsers, parseCpus, parseFairshare, parseJobs, parseNodeStates, parseNodes, parsePartitionCpus, parseSdiag, type SchedulerSample } from "./scheduler-metrics.js";

const run = promisify(execFile);

export interface SlurmSourceOptions {
  /** How often the commands run; the reference exporter advises 30 s (they load slurmctld). */
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Directory of sinfo, squeue and sdiag ("" = on PATH). */
  readonly binDir: string;
}

/**
 * Scheduler metrics from the root's host: polls sinfo and squeue (and sdiag when permitted) in the
 * background — never on the sampling path — and hands the sampler the latest answers under
 * prometheus-slurm-exporter's names. A command that fails keeps nothing stale: its metrics leave
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
    await cmd("sinfo", ["-h", "-o", "%D|%T"], parseNodeStates);
    await cmd("sinfo", ["-h", "-o", "%C"], parseCpus);
    await cmd("sinfo", ["-h", "-o", "%R|%C"], parsePartitionCpus);
    await cmd("squeue", ["-h", "-a", "-r", "-o", "%T|%P|%r", "--states=all"], parseJobs);
    await cmd("squeue", ["-h", "-a", "-r", "-o", "%a|%u|%T|%C", "--states=PENDING,RUNNING,SUSPENDED"], parseAccountsAndUsers);
    await cmd("sinfo", ["-h", "-N", "-O", "NodeHost:0|,StateLong:0|,CPUsState:0|,AllocMem:0|,Memory:0|,Gres:0|,GresUsed:0"], parseNodes);
    await cmd("sdiag", [], parseSdiag);
    // Fair share needs slurmdbd: a site without accounting sees banyan_slurm_up{command="sshare …"} 0, and no log line each minute.
    await cmd("sshare", ["-n", "-P", "-o", "account,fairshare"], parseFairshare, true);
    this.latest = out;
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
