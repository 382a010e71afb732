import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { SeriesType, seriesDef } from "../series/series-def.js";
import type { SampleTarget, Source } from "./source.js";

/**
 * This node's cpu, memory and load from /proc, under node_exporter 1.5's names, labels and units,
 * so dashboards built for node_exporter read a Banyan root unchanged:
 *   node_cpu_seconds_total{cpu,mode}   /proc/stat, USER_HZ ticks → seconds
 *   node_memory_<Field>_bytes          /proc/meminfo, kB → bytes; `Active(anon)` → `Active_anon`;
 *   node_memory_<Field>                  fields without a unit (HugePages_Total) as they are
 *   node_load1, node_load5, node_load15 /proc/loadavg
 * Files are read asynchronously; series are defined once and then set by id.
 */
const CPU_MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
/** USER_HZ: 100 on every Linux architecture node_exporter supports. */
const USER_HZ = 100;

export class ProcfsSource implements Source {
  readonly name = "procfs";
  private readonly ids = new Map<string, number>();
  private seenNow = new Set<string>();

  constructor(private readonly procPath = "/proc") {}

  async collect(target: SampleTarget): Promise<void> {
    this.seenNow = new Set();
    const [stat, meminfo, loadavg] = await Promise.all([this.read("stat"), this.read("meminfo"), this.read("loadavg")]);
    if (stat !== null) this.cpu(stat, target);
    if (meminfo !== null) this.memory(meminfo, target);
    if (loadavg !== null) this.load(loadavg, target);
    // Series that vanished (a CPU unplugged, a file unreadable) end at the root.
    for (const [key, id] of this.ids) {
      if (!this.seenNow.has(key)) {
        target.remove(id);
        this.ids.delete(key);
      }
    }
  }

  private async read(file: string): Promise<string | null> {
    try {
      return await readFile(join(this.procPath, file), "utf8");
    } catch {
      return null;
    }
  }

  private put(target: SampleTarget, key: string, make: () => ReturnType<typeof seriesDef>, value: number): void {
    let id = this.ids.get(key);
    if (id === undefined) {
      id = target.define(make());
      this.ids.set(key, id);
    }
    this.seenNow.add(key);
    target.set(id, value);
  }

  private cpu(text: string, target: SampleTarget): void {
    for (const line of text.split("\n")) {
      if (!/^cpu\d+ /.test(line)) continue;
      const fields = line.trim().split(/\s+/);
      const cpu = fields[0]!.slice(3);
      for (let m = 0; m < CPU_MODES.length; m++) {
        const raw = fields[m + 1];
        if (raw === undefined) continue;
        const mode = CPU_MODES[m]!;
        this.put(
          target,
          `cpu/${cpu}/${mode}`,
          () => seriesDef("node_cpu_seconds_total", { cpu, mode }, SeriesType.Counter, { help: "Seconds the CPUs spent in each mode." }),
          Number(raw) / USER_HZ,
        );
      }
    }
  }

  private memory(text: string, target: SampleTarget): void {
    for (const line of text.split("\n")) {
      const m = /^([A-Za-z0-9_()]+):\s+(\d+)(\s+kB)?/.exec(line);
      if (m === null) continue;
      const field = m[1]!.replace(/\((.*)\)/, "_$1");
      const bytes = m[3] !== undefined;
      const name = `node_memory_${field}${bytes ? "_bytes" : ""}`;
      this.put(
        target,
        `mem/${name}`,
        () => seriesDef(name, {}, SeriesType.Gauge, { help: `Memory information field ${field}${bytes ? "_bytes" : ""}.` }),
        Number(m[2]) * (bytes ? 1024 : 1),
      );
    }
  }

  private load(text: string, target: SampleTarget): void {
    const parts = text.trim().split(/\s+/);
    ["1", "5", "15"].forEach((w, k) => {
      const v = Number(parts[k]);
      if (!Number.isFinite(v)) return;
      this.put(target, `load/${w}`, () => seriesDef(`node_load${w}`, {}, SeriesType.Gauge, { help: `${w}m load average.` }), v);
    });
  }
}
