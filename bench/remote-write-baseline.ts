import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { waitHttp, type BenchCluster } from "./bench-cluster.js";
import { which } from "./prometheus-baseline.js";
import { peakRss, processStats } from "./process-stats.js";
import { grownByLabel, total } from "./root-metrics.js";

export type ReceiverKind = "prometheus" | "victoriametrics";

/** What the bench measured of the roots' remote_write to a real receiver. */
export interface RemoteWriteFigures {
  readonly receiver: ReceiverKind;
  /** The receiver's CPU (cores) and memory while the roots write to it. */
  readonly receiver_cpu_cores: number;
  readonly receiver_rss_mb: number;
  /** Samples a second the roots wrote (changes and refreshes), and compressed bytes on the wire per sample. */
  readonly samples_per_s: number;
  readonly bytes_per_sample: number;
  /** The roots' CPU per update with remote_write on (compare root_cpu_us_per_sample_update of a run without it). */
  readonly root_cpu_us_per_sample_update: number;
  /** The receiver stopped this long, then started again: until the roots' lag is back under 2 s, and samples dropped meanwhile. */
  readonly outage_s: number;
  readonly catch_up_ms: number;
  readonly samples_lost: number;
  /** The samples lost, by the reason the roots counted them (empty when none). */
  readonly samples_lost_by_reason: Record<string, number>;
  /** The roots' memory (MB, summed) before the outage and at its end: flat, whatever the outage's length. */
  readonly root_rss_mb_before_outage: number;
  readonly root_rss_mb_end_of_outage: number;
}

/** A real receiver on 127.0.0.1, stoppable and restartable on the same data. */
export class Receiver {
  private proc: ChildProcess | null = null;

  constructor(
    readonly kind: ReceiverKind,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/api/v1/write`;
  }

  get pid(): number {
    return this.proc!.pid!;
  }

  async start(): Promise<void> {
    if (this.kind === "prometheus") {
      const cfg = join(this.dir, "receiver.yml");
      // As the README advises a receiver of several roots: a node that moved between roots has its
      // last samples from the old root arrive after the new root's first (both drain at once after an
      // outage); without an out-of-order window Prometheus refuses them (and, before the sender split
      // refused requests, every other sample sent with them).
      writeFileSync(cfg, "global:\n  scrape_interval: 60s\nscrape_configs: []\nstorage:\n  tsdb:\n    out_of_order_time_window: 10m\n");
      this.proc = spawn(which("prometheus"), [`--config.file=${cfg}`, `--storage.tsdb.path=${join(this.dir, "receiver")}`, `--web.listen-address=127.0.0.1:${this.port}`, "--web.enable-remote-write-receiver"], { stdio: "ignore" });
    } else {
      this.proc = spawn(which("victoria-metrics"), [`-storageDataPath=${join(this.dir, "receiver")}`, `-httpListenAddr=127.0.0.1:${this.port}`], { stdio: "ignore" });
    }
    await waitHttp(`http://127.0.0.1:${this.port}${this.kind === "prometheus" ? "/-/ready" : "/health"}`, 30_000);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p === null || p.exitCode !== null) return;
    p.kill("SIGTERM");
    await once(p, "exit");
  }
}

/**
 * With the cluster running and its roots writing to `receiver`: the receiver's cost over the
 * window, the bytes and the roots' CPU per sample, then an outage of `outageS` and the time the
 * roots need to catch up after it.
 */
export async function measureRemoteWrite(cluster: BenchCluster, receiver: Receiver, windowS: number, outageS: number, say: (l: string) => void): Promise<RemoteWriteFigures> {
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const [m0, r0, p0] = [await cluster.rootMetrics(), cluster.rootProcessStats(), processStats(receiver.pid)];
  const t0 = Date.now();
  await sleep(windowS * 1000);
  const [m1, r1, p1] = [await cluster.rootMetrics(), cluster.rootProcessStats(), processStats(receiver.pid)];
  const seconds = (Date.now() - t0) / 1000;
  const grown = (name: string): number => total(m1, name) - total(m0, name);
  const sent = grown("banyan_remote_write_samples_sent_total");
  const updates = grown("banyan_root_series_updates_total");
  const rootCpuS = r1.reduce((s, r, k) => s + r.cpuS - r0[k]!.cpuS, 0);
  const steady = {
    receiver_cpu_cores: (p1.cpuS - p0.cpuS) / seconds,
    receiver_rss_mb: peakRss(receiver.pid) / 2 ** 20,
    samples_per_s: sent / seconds,
    bytes_per_sample: sent > 0 ? grown("banyan_remote_write_sent_bytes_total") / sent : NaN,
    root_cpu_us_per_sample_update: updates > 0 ? (rootCpuS * 1e6) / updates : NaN,
  };
  say(`remote_write to ${receiver.kind}: ${steady.samples_per_s.toFixed(0)} samples/s, ${steady.bytes_per_sample.toFixed(1)} B per sample on the wire; the receiver ${steady.receiver_cpu_cores.toFixed(3)} cores, ${steady.receiver_rss_mb.toFixed(0)} MB`);

  // An outage: the receiver away, then back; until the roots' lag is under 2 s again.
  const o0 = await cluster.rootMetrics();
  const failed0 = total(o0, "banyan_remote_write_samples_failed_total");
  const rss = (): number => cluster.rootProcessStats().reduce((s, r) => s + r.rssBytes, 0) / 2 ** 20;
  const rssBefore = rss();
  await receiver.stop();
  await sleep(outageS * 1000);
  const rssEnd = rss();
  const back = Date.now();
  await receiver.start();
  let caughtUp = NaN;
  const lagged = (m: Map<string, number>[]): number => Math.max(0, ...m.flatMap((x) => [...x].filter(([k]) => k.startsWith("banyan_remote_write_lag_seconds")).map(([, v]) => v)));
  while (Date.now() - back < Math.max(120_000, outageS * 4000)) {
    const m = await cluster.rootMetrics();
    const pending = total(m, "banyan_remote_write_samples_pending");
    if (lagged(m) < 2 && pending < steady.samples_per_s * 3) {
      caughtUp = Date.now() - back;
      break;
    }
    await sleep(250);
  }
  const o1 = await cluster.rootMetrics();
  const lost = total(o1, "banyan_remote_write_samples_failed_total") - failed0;
  // Why, when any: the reason a sample was counted (status_4xx, queue_full, out_of_order, stopped, …).
  const lostBy = grownByLabel(o0, o1, "banyan_remote_write_samples_failed_total", "reason");
  say(`remote_write outage of ${outageS} s: caught up ${Number.isNaN(caughtUp) ? "not within the wait" : `${(caughtUp / 1000).toFixed(1)} s after the receiver came back`}, ${lost} samples lost${lost > 0 ? ` ${JSON.stringify(lostBy)}` : ""}; roots' memory ${rssBefore.toFixed(0)} MB before, ${rssEnd.toFixed(0)} MB at the end of it`);
  return { receiver: receiver.kind, ...steady, outage_s: outageS, catch_up_ms: caughtUp, samples_lost: lost, samples_lost_by_reason: lostBy, root_rss_mb_before_outage: rssBefore, root_rss_mb_end_of_outage: rssEnd };
}
