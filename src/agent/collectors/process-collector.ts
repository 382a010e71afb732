import { readdirSync, readFileSync } from "node:fs";
import { RARELY, type Collector } from "./series-writer.js";

/**
 * The exporter's own row of Node Exporter Full (`process_*`): for Banyan, the agent's process, under
 * the names client libraries give them, so an admin sees the agent's cost in the same panels. Read
 * from the real /proc/self (the agent's own process even when `procfs.path` points at a host's /proc
 * mounted elsewhere); CPU time and RSS from Node itself.
 */

/** "Max open files" and "Max address space" of /proc/self/limits; unlimited is 2^64, as client_golang shows it. */
export function parseLimits(text: string): { maxFds: number; maxAddressSpace: number } {
  const soft = (label: string): number => {
    const line = text.split("\n").find((l) => l.startsWith(label));
    const v = line?.slice(label.length).trim().split(/\s+/)[0];
    return v === undefined ? NaN : v === "unlimited" ? 2 ** 64 : Number(v);
  };
  return { maxFds: soft("Max open files"), maxAddressSpace: soft("Max address space") };
}

/** Virtual memory size (bytes) and start time (clock ticks after boot) from /proc/self/stat. */
export function parseSelfStat(text: string): { vsize: number; startTicks: number } {
  // After the command name in parentheses (which may hold spaces): field 3 onward.
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { vsize: Number(f[20]), startTicks: Number(f[19]) };
}

/** USER_HZ: the kernel's unit of /proc/<pid>/stat times on every Linux architecture Node runs on. */
const CLK_TCK = 100;

let startTime: number | null = null;

function processStartSeconds(startTicks: number): number {
  if (startTime === null) {
    const btime = /^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"));
    startTime = btime ? Number(btime[1]) + startTicks / CLK_TCK : Math.round(Date.now() / 1000 - process.uptime());
  }
  return startTime;
}

/** What changes rarely (limits, start time, size of the address space, open fds): read every RARELY ticks. */
let slow: { vsize: number; start: number; maxFds: number; maxAddressSpace: number; openFds: number } | null = null;
let calls = 0;

export const processCollector: Collector = {
  name: "process",
  async collect(w) {
    const cpu = process.cpuUsage();
    w.counter("process_cpu_seconds_total", {}, (cpu.user + cpu.system) / 1e6, "Total user and system CPU time spent in seconds.");
    w.gauge("process_resident_memory_bytes", {}, process.memoryUsage.rss(), "Resident memory size in bytes.");
    if (slow === null || calls++ % RARELY === 0) {
      const stat = parseSelfStat(readFileSync("/proc/self/stat", "latin1"));
      const limits = parseLimits(readFileSync("/proc/self/limits", "latin1"));
      slow = { vsize: stat.vsize, start: processStartSeconds(stat.startTicks), ...limits, openFds: readdirSync("/proc/self/fd").length };
    }
    w.gauge("process_virtual_memory_bytes", {}, slow.vsize, "Virtual memory size in bytes.");
    w.gauge("process_start_time_seconds", {}, slow.start, "Start time of the process since unix epoch in seconds.");
    w.gauge("process_max_fds", {}, slow.maxFds, "Maximum number of open file descriptors.");
    w.gauge("process_virtual_memory_max_bytes", {}, slow.maxAddressSpace, "Maximum amount of virtual memory available in bytes.");
    w.gauge("process_open_fds", {}, slow.openFds, "Number of open file descriptors.");
  },
};
