import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** One RAPL zone of /sys/class/powercap, named as node_exporter names it. */
export interface RaplZone {
  /** The zone's name without its index ("package-0" → "package"; "dram", "core", "psys"). */
  readonly zone: string;
  /** Its index: the one its name ends with, else how many zones of that name came before. */
  readonly index: string;
  /** Its directory (node_exporter's `path` label). */
  readonly path: string;
}

/**
 * The RAPL zones under `<sys>/class/powercap` (intel-rapl:0, intel-rapl:0:0, …; AMD's too, under the
 * same interface): each directory with a `name` file. Names ending in "-<n>" give their index; a name
 * seen again without one gets the count of those before it, as node_exporter's rapl collector does.
 */
export function raplZones(sys: string): RaplZone[] {
  const dir = join(sys, "class/powercap");
  let entries: string[];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const used = new Map<string, number>();
  const out: RaplZone[] = [];
  for (const e of entries) {
    let name: string;
    try {
      name = readFileSync(join(dir, e, "name"), "utf8").trim();
    } catch {
      continue; // a control type (intel-rapl), not a zone
    }
    const m = /^(.+)-(\d+)$/.exec(name);
    const zone = m !== null ? m[1]! : name;
    const index = m !== null ? Number(m[2]) : (used.get(name) ?? 0);
    used.set(zone, index + 1);
    out.push({ zone: zone.replace(/[^a-zA-Z0-9_]/g, "_"), index: String(index), path: join(dir, e) });
  }
  return out;
}

/**
 * A zone's energy counter in joules (energy_uj). Throws with what to do when it cannot be read: since
 * Linux 5.10 energy_uj is readable by root only (CVE-2020-8694).
 */
export function readRaplJoules(z: RaplZone): number {
  let text: string;
  try {
    text = readFileSync(join(z.path, "energy_uj"), "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EACCES" || e.code === "EPERM") throw new Error(`${join(z.path, "energy_uj")} is not readable (root only since Linux 5.10): run the agent as root, or let its user read it (a udev rule)`);
    throw new Error(`${join(z.path, "energy_uj")}: ${e.code ?? e.message}`);
  }
  const uj = Number(text.trim());
  if (!Number.isFinite(uj)) throw new Error(`${join(z.path, "energy_uj")}: not a number (${JSON.stringify(text.slice(0, 40))})`);
  return uj / 1e6;
}

/** The node's CPU-package and DRAM energy so far (sums of their zones), null where it has none or cannot read them. */
export function cpuAndDramJoules(zones: readonly RaplZone[]): { cpu: number | null; dram: number | null } {
  let cpu: number | null = null;
  let dram: number | null = null;
  for (const z of zones) {
    if (z.zone !== "package" && z.zone !== "dram") continue;
    let j: number;
    try {
      j = readRaplJoules(z);
    } catch {
      return { cpu: null, dram: null };
    }
    if (z.zone === "package") cpu = (cpu ?? 0) + j;
    else dram = (dram ?? 0) + j;
  }
  return { cpu, dram };
}
