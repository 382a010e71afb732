import { readdirSync, readFileSync } from "node:fs";

/** What `processStats` reads of a process. */
export interface ProcessStats {
  cpuS: number;
  userS: number;
  systemS: number;
  /**
   * Times its threads were put on a core (schedstat's timeslices), since it started: each is a
   * detour for whatever ran there before. `mainSlices` are the main thread's (the event loop), the
   * rest are V8's and libuv's helper threads.
   */
  slices: number;
  mainSlices: number;
  rssBytes: number;
  rssAnonBytes: number;
  rssFileBytes: number;
}

/** CPU seconds (all threads' time on CPU from schedstat, else user + system; and each), timeslices and RSS of a process (whole, anonymous, file-backed), from /proc (Linux). */
export function processStats(pid: number): ProcessStats {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const user = Number(fields[11]) / 100;
    const system = Number(fields[12]) / 100;
    // The time on CPU of every thread in nanoseconds (the 10 ms ticks of user and system are too coarse for 0.1 %).
    let onCpuNs = 0;
    let slices = 0;
    let mainSlices = 0;
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [runNs, , runs] = readFileSync(`/proc/${pid}/task/${task}/schedstat`, "utf8").split(" ").map(Number);
        onCpuNs += runNs!;
        slices += runs!;
        if (task === String(pid)) mainSlices = runs!;
      } catch {
        // the thread ended
      }
    }
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    return { cpuS: onCpuNs > 0 ? onCpuNs / 1e9 : user + system, userS: user, systemS: system, slices, mainSlices, rssBytes: kb("VmRSS"), rssAnonBytes: kb("RssAnon"), rssFileBytes: kb("RssFile") };
  } catch {
    return { cpuS: 0, userS: 0, systemS: 0, slices: 0, mainSlices: 0, rssBytes: 0, rssAnonBytes: 0, rssFileBytes: 0 };
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
