import { readFileSync } from "node:fs";

/** CPU seconds (user + system, and each) and RSS of a process (whole, anonymous, file-backed), from /proc (Linux). */
export function processStats(pid: number): { cpuS: number; userS: number; systemS: number; rssBytes: number; rssAnonBytes: number; rssFileBytes: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const user = Number(fields[11]) / 100;
    const system = Number(fields[12]) / 100;
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { cpuS: user + system, userS: user, systemS: system, rssBytes: kb("VmRSS"), rssAnonBytes: kb("RssAnon"), rssFileBytes: kb("RssFile") };
  } catch {
    return { cpuS: 0, userS: 0, systemS: 0, rssBytes: 0, rssAnonBytes: 0, rssFileBytes: 0 };
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
