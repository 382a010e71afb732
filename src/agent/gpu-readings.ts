/** What a node's GPU source knows of one GPU now, in dcgm-exporter's units. */
export interface GpuReading {
  /** DCGM_FI_DEV_GPU_UTIL, in %. */
  readonly utilPercent: number | null;
  /** DCGM_FI_DEV_FB_USED, in MiB. */
  readonly memoryUsedMiB: number | null;
  /** DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION in joules (dcgm-exporter's is mJ since the driver loaded). */
  readonly energyJoules?: number | null;
}

/**
 * A source that can say how busy a GPU is, by the index Slurm gives in SLURM_JOB_GPUS (nvidia-smi's
 * `index`, dcgm-exporter's `gpu` label): the nvidia-smi source and a scrape of dcgm-exporter.
 */
export interface GpuReadings {
  gpuReading(index: string): GpuReading | undefined;
}

/** Readings by `gpu` label from dcgm-exporter-named samples; empty when there are none. */
export function gpuReadingsOf(samples: Iterable<{ readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly value: number }>): Map<string, GpuReading> {
  const out = new Map<string, { utilPercent: number | null; memoryUsedMiB: number | null; energyJoules: number | null }>();
  for (const s of samples) {
    const field = s.name === "DCGM_FI_DEV_GPU_UTIL" ? "utilPercent" : s.name === "DCGM_FI_DEV_FB_USED" ? "memoryUsedMiB" : s.name === "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" ? "energyJoules" : null;
    const gpu = s.labels["gpu"];
    if (field === null || gpu === undefined || !Number.isFinite(s.value)) continue;
    let r = out.get(gpu);
    if (r === undefined) out.set(gpu, (r = { utilPercent: null, memoryUsedMiB: null, energyJoules: null }));
    r[field] = field === "energyJoules" ? s.value / 1000 : s.value;
  }
  return out;
}

/**
 * The GPU indices of SLURM_JOB_GPUS ("0,1", and ranges "4-7" for safety), or an error naming the text.
 * Slurm leaves the variable unset (or empty) for a job without GPUs.
 */
export function parseGpuList(text: string): string[] {
  const out: string[] = [];
  if (text.trim() === "") return out;
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (m === null) throw new Error(`SLURM_JOB_GPUS "${text}": "${part}" is not a GPU index or a range of them`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi - lo > 1024) throw new Error(`SLURM_JOB_GPUS "${text}": "${part}" is not a sensible range`);
    for (let i = lo; i <= hi; i++) out.push(String(i));
  }
  return out;
}
