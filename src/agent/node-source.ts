import { diskstatsCollector, filesystemCollector } from "./collectors/disk-collectors.js";
import { netclassCollector, netdevCollector, netstatCollector, sockstatCollector } from "./collectors/net-collectors.js";
import { cpuCollector, cpufreqCollector, entropyCollector, filefdCollector, loadavgCollector, meminfoCollector, pressureCollector, statCollector, vmstatCollector } from "./collectors/proc-collectors.js";
import { lustreJobstatsCollector } from "./collectors/lustre-jobstats.js";
import { conntrackCollector, selinuxCollector, softnetCollector, timeCollector, udpQueuesCollector } from "./collectors/kernel-collectors.js";
import { RARELY, SeriesWriter, type Collector, type HostPaths } from "./collectors/series-writer.js";
import { kernelFiles } from "./collectors/kernel-files.js";
import { amazonEfaCollector, arpCollector, hwmonCollector, infinibandCollector, lustreCollector, osCollector, unameCollector } from "./collectors/sys-collectors.js";
import { processCollector } from "./collectors/process-collector.js";
import { raplCollector } from "./collectors/power-collectors.js";
import { textfileCollector } from "./collectors/textfile-collector.js";
import { timexCollector } from "./collectors/timex-collector.js";
import type { SampleTarget, Source } from "../node/source.js";
import { LimitedWarning, type Logger } from "../core/logger.js";

/** Every collector, by the name config uses to switch it off. */
export const COLLECTORS: readonly Collector[] = [
  cpuCollector,
  cpufreqCollector,
  statCollector,
  meminfoCollector,
  loadavgCollector,
  vmstatCollector,
  pressureCollector,
  filefdCollector,
  entropyCollector,
  netdevCollector,
  netclassCollector,
  netstatCollector,
  sockstatCollector,
  softnetCollector,
  conntrackCollector,
  udpQueuesCollector,
  arpCollector,
  diskstatsCollector,
  filesystemCollector,
  unameCollector,
  osCollector,
  timeCollector,
  timexCollector,
  selinuxCollector,
  hwmonCollector,
  raplCollector,
  infinibandCollector,
  amazonEfaCollector,
  lustreCollector,
  lustreJobstatsCollector,
  textfileCollector,
  processCollector,
];

/** The owner of node_exporter's own row in the series writer. */
const META = "(scrape)";

export const COLLECTOR_NAMES: readonly string[] = COLLECTORS.map((c) => c.name);

/**
 * The node's own metrics from /proc and /sys, with node_exporter 1.5's names, labels, types and
 * units, so Grafana's Node Exporter Full dashboard reads a root unchanged. Each collector reads
 * files (never spawns a process) and can be switched off; one that fails a tick is skipped, the
 * others go on.
 */
export class NodeSource implements Source {
  readonly name = "procfs";
  private writer: SeriesWriter | null = null;
  private tick = 0;
  private readonly active: readonly Collector[];
  /** Per active collector: seconds its last run took, and 1 when it ran whole. */
  private readonly seconds: Float64Array;
  private readonly success: Uint8Array;
  /** `{collector}` of each, made once (the meta series are written every tick). */
  private readonly collectorLabels: readonly Record<string, string>[];

  /** Per active collector: a line an hour at most saying why it failed (an unreadable energy_uj, a missing file). */
  private readonly failed: readonly LimitedWarning[] | null;

  constructor(
    private readonly paths: HostPaths,
    disabled: readonly string[] = [],
    log?: Logger,
  ) {
    this.active = COLLECTORS.filter((c) => !disabled.includes(c.name));
    this.failed = log === undefined ? null : this.active.map((c) => new LimitedWarning(log, `collector ${c.name} failed: its series are left out (node_scrape_collector_success{collector="${c.name}"} 0)`, 3_600_000));
    kernelFiles.setRoots([paths.proc, paths.sys]);
    this.seconds = new Float64Array(this.active.length);
    this.success = new Uint8Array(this.active.length).fill(1);
    this.collectorLabels = this.active.map((c) => ({ collector: c.name }));
  }

  async collect(target: SampleTarget): Promise<void> {
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    kernelFiles.newTick();
    for (const [i, c] of this.active.entries()) {
      if (this.tick % (c.everyTicks ?? 1) !== 0) {
        w.keep(c.name);
        continue;
      }
      w.owner = c.name;
      const t0 = performance.now();
      try {
        await c.collect(w, this.paths);
        this.success[i] = 1;
      } catch (err) {
        // A collector that breaks on an odd file loses its series this tick; the others go on.
        this.success[i] = 0;
        this.failed?.[i]!.warn({ collector: c.name, err: (err as Error).message });
      }
      this.seconds[i] = (performance.now() - t0) / 1000;
    }
    // node_exporter's own row: how long each collector took the last time it ran, and whether it ran
    // whole. At the slow cadence: 31 durations that move every tick are 31 changes a second to
    // encode and send, for a figure nobody reads at 1 s.
    w.owner = META;
    if (this.tick % RARELY === 0) {
      for (let i = 0; i < this.active.length; i++) {
        w.gauge("node_scrape_collector_duration_seconds", this.collectorLabels[i]!, this.seconds[i]!, "node_exporter: Duration of a collector scrape.");
        w.gauge("node_scrape_collector_success", this.collectorLabels[i]!, this.success[i]!, "node_exporter: Whether a collector succeeded.");
      }
    } else w.keep(META);
    w.end();
    this.tick++;
  }
}
