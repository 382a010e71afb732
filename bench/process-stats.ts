import { readFileSync } from "node:fs";

/** CPU seconds (user + system) and RSS of a process, from /proc (Linux). */
export function processStats(pid: number): { cpuS: number; rssBytes: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
    return { cpuS: ticks / 100, rssBytes: rss };
  } catch {
    return { cpuS: 0, rssBytes: 0 };
  }
}

/** Peak RSS of a process (VmHWM), bytes. */
export function peakRss(pid: number): number {
  try {
    return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}
