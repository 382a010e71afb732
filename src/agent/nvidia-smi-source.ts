import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Logger } from "../core/logger.js";
import { SeriesType } from "../series/series-def.js";
import { SeriesWriter } from "./collectors/series-writer.js";
import { gpuReadingsOf, type GpuReading, type GpuReadings } from "./gpu-readings.js";
import type { SampleTarget, Source } from "../node/source.js";

/**
 * GPUs without dcgm-exporter: one long-lived `nvidia-smi --query-gpu=… --format=csv,noheader,nounits
 * -lms <interval>` child prints a line per GPU per interval; the latest line of each GPU is mapped to
 * dcgm-exporter's names and labels (gpu, UUID, device, modelName, pci_bus_id), so its Grafana
 * dashboard (12239) works. The sampling loop never waits on it; if the child dies it is started
 * again with a growing pause; if nvidia-smi is not there, the source says so once and stays empty.
 */
export const NVIDIA_SMI_FIELDS = [
  "index",
  "uuid",
  "name",
  "pci.bus_id",
  "utilization.gpu",
  "utilization.memory",
  "memory.used",
  "memory.free",
  "temperature.gpu",
  "temperature.memory",
  "power.draw",
  "clocks.sm",
  "clocks.mem",
] as const;

/** [nvidia-smi field, dcgm-exporter metric, type, help] */
const DCGM: [string, string, SeriesType, string][] = [
  ["utilization.gpu", "DCGM_FI_DEV_GPU_UTIL", SeriesType.Gauge, "GPU utilization (in %)."],
  ["utilization.memory", "DCGM_FI_DEV_MEM_COPY_UTIL", SeriesType.Gauge, "Memory utilization (in %)."],
  ["memory.used", "DCGM_FI_DEV_FB_USED", SeriesType.Gauge, "Framebuffer memory used (in MiB)."],
  ["memory.free", "DCGM_FI_DEV_FB_FREE", SeriesType.Gauge, "Framebuffer memory free (in MiB)."],
  ["temperature.gpu", "DCGM_FI_DEV_GPU_TEMP", SeriesType.Gauge, "GPU temperature (in C)."],
  ["temperature.memory", "DCGM_FI_DEV_MEMORY_TEMP", SeriesType.Gauge, "Memory temperature (in C)."],
  ["power.draw", "DCGM_FI_DEV_POWER_USAGE", SeriesType.Gauge, "Power draw (in W)."],
  ["clocks.sm", "DCGM_FI_DEV_SM_CLOCK", SeriesType.Gauge, "SM clock frequency (in MHz)."],
  ["clocks.mem", "DCGM_FI_DEV_MEM_CLOCK", SeriesType.Gauge, "Memory clock frequency (in MHz)."],
];

export interface GpuSample {
  readonly labels: Record<string, string>;
  readonly values: { name: string; type: SeriesType; help: string; value: number }[];
}

/** One CSV line of nvidia-smi (fields in NVIDIA_SMI_FIELDS order) as dcgm-exporter series; null if malformed. */
export function parseNvidiaSmiLine(line: string): GpuSample | null {
  const cells = line.split(",").map((c) => c.trim());
  if (cells.length !== NVIDIA_SMI_FIELDS.length || !/^\d+$/.test(cells[0]!)) return null;
  const get = (f: string): string => cells[NVIDIA_SMI_FIELDS.indexOf(f as (typeof NVIDIA_SMI_FIELDS)[number])]!;
  const labels = { gpu: get("index"), UUID: get("uuid"), device: `nvidia${get("index")}`, modelName: get("name"), pci_bus_id: get("pci.bus_id") };
  const values: GpuSample["values"] = [];
  for (const [field, name, type, help] of DCGM) {
    const raw = get(field);
    const v = Number(raw);
    if (raw === "" || raw.startsWith("[") || !Number.isFinite(v)) continue; // [N/A], [Not Supported]
    values.push({ name, type, help, value: v });
  }
  return { labels, values };
}

export class NvidiaSmiSource implements Source, GpuReadings {
  readonly name = "nvidia-smi";
  private readonly latest = new Map<string, GpuSample>();
  /** Per GPU: energy so far (mJ) and when its power was last read. */
  private readonly energy = new Map<string, { mj: number; atMs: number }>();
  private child: ChildProcess | null = null;
  private writer: SeriesWriter | null = null;
  private restartMs = 1000;
  private closed = false;
  private missing = false;

  constructor(
    private readonly binary: string,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  collect(target: SampleTarget): void {
    if (this.child === null && !this.closed && !this.missing) this.start();
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    for (const g of this.latest.values()) for (const v of g.values) w.put(v.name, g.labels, v.value, v.type, v.help);
    w.end();
  }

  close(): void {
    this.closed = true;
    this.child?.kill("SIGTERM");
  }

  gpuReading(index: string): GpuReading | undefined {
    const g = this.latest.get(index);
    return g === undefined ? undefined : gpuReadingsOf(g.values.map((v) => ({ name: v.name, labels: g.labels, value: v.value }))).get(index);
  }

  /**
   * Feeds one output line (the child's stdout goes here; tests feed recorded output). Each GPU's
   * power draw is integrated into its energy, DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ, a counter
   * from the source's start), which nvidia-smi's query does not give: a line stands for the time since
   * the GPU's last one, 10 s at most (a stalled child's gap is not invented).
   */
  accept(line: string, nowMs = Date.now()): void {
    const g = parseNvidiaSmiLine(line);
    if (g === null) return;
    const gpu = g.labels.gpu!;
    const e = this.energy.get(gpu) ?? { mj: 0, atMs: 0 };
    const watts = g.values.find((v) => v.name === "DCGM_FI_DEV_POWER_USAGE")?.value;
    if (watts !== undefined && e.atMs > 0 && nowMs > e.atMs) e.mj += watts * Math.min(10_000, nowMs - e.atMs);
    if (watts !== undefined) e.atMs = nowMs;
    this.energy.set(gpu, e);
    if (watts !== undefined) g.values.push({ name: "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", type: SeriesType.Counter, help: "Total energy consumption since the source started (in mJ): the power draw integrated.", value: e.mj });
    this.latest.set(gpu, g);
  }

  private start(): void {
    const child = spawn(this.binary, [`--query-gpu=${NVIDIA_SMI_FIELDS.join(",")}`, "--format=csv,noheader,nounits", `-lms=${this.intervalMs}`], { stdio: ["ignore", "pipe", "ignore"] });
    this.child = child;
    createInterface({ input: child.stdout! }).on("line", (l) => this.accept(l));
    child.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") {
        this.missing = true;
        this.log.warn({ binary: this.binary }, "nvidia-smi not found: no GPU metrics from it (scrape dcgm-exporter instead, or install the driver tools)");
      }
    });
    child.on("exit", () => {
      this.child = null;
      this.latest.clear();
      if (this.closed || this.missing) return;
      const t = setTimeout(() => this.start(), this.restartMs);
      t.unref();
      this.restartMs = Math.min(60_000, this.restartMs * 2);
    });
  }
}
