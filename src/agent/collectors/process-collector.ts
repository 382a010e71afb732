import { readdirSync, readFileSync } from "node:fs";
import type { Collector } from "./series-writer.js";

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

export const processCollector: Collector = {
  name: "process",
  async collect(w) {
    const cpu = process.cpuUsage();
    w.counter("process_cpu_seconds_total", {}, (cpu.user + cpu.system) / 1e6, "Total user and system CPU time spent in seconds.");
    w.gauge("process_resident_memory_bytes", {}, process.memoryUsage.rss(), "Resident memory size in bytes.");
    const stat = parseSelfStat(readFileSync("/proc/self/stat", "utf8"));
    w.gauge("process_virtual_memory_bytes", {}, stat.vsize, "Virtual memory size in bytes.");
    w.gauge("process_start_time_seconds", {}, processStartSeconds(stat.startTicks), "Start time of the process since unix epoch in seconds.");
    const limits = parseLimits(readFileSync("/proc/self/limits", "utf8"));
    w.gauge("process_max_fds", {}, limits.maxFds, "Maximum number of open file descriptors.");
    w.gauge("process_virtual_memory_max_bytes", {}, limits.maxAddressSpace, "Maximum amount of virtual memory available in bytes.");
    w.gauge("process_open_fds", {}, readdirSync("/proc/self/fd").length, "Number of open file descriptors.");
  },
};
