import { diskstatsCollector, filesystemCollector } from "./collectors/disk-collectors.js";
import { netclassCollector, netdevCollector, netstatCollector, sockstatCollector } from "./collectors/net-collectors.js";
import { cpuCollector, cpufreqCollector, entropyCollector, filefdCollector, loadavgCollector, meminfoCollector, pressureCollector, statCollector, vmstatCollector } from "./collectors/proc-collectors.js";
import { lustreJobstatsCollector } from "./collectors/lustre-jobstats.js";
import { conntrackCollector, selinuxCollector, softnetCollector, timeCollector, udpQueuesCollector } from "./collectors/kernel-collectors.js";
import { SeriesWriter, type Collector, type HostPaths } from "./collectors/series-writer.js";
import { arpCollector, hwmonCollector, infinibandCollector, lustreCollector, osCollector, unameCollector } from "./collectors/sys-collectors.js";
import type { SampleTarget, Source } from "./source.js";

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
  selinuxCollector,
  hwmonCollector,
  infinibandCollector,
  lustreCollector,
  lustreJobstatsCollector,
];

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

  constructor(
    private readonly paths: HostPaths,
    disabled: readonly string[] = [],
  ) {
    this.active = COLLECTORS.filter((c) => !disabled.includes(c.name));
  }

  async collect(target: SampleTarget): Promise<void> {
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    for (const c of this.active) {
      if (this.tick % (c.everyTicks ?? 1) !== 0) {
        w.keep(c.name);
        continue;
      }
      w.owner = c.name;
      try {
        await c.collect(w, this.paths);
      } catch {
        // A collector that breaks on an odd file loses its series this tick; the others go on.
      }
    }
    w.end();
    this.tick++;
  }
}
