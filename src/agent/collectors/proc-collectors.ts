import { join } from "node:path";
import { fields, listDir, readText, type Collector } from "./series-writer.js";

/**
 * /proc collectors with node_exporter 1.5's names, labels, types and units: cpu, stat, meminfo,
 * loadavg, vmstat, pressure, filefd, entropy.
 */
const CPU_MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
/** USER_HZ: 100 on every Linux architecture node_exporter supports. */
const USER_HZ = 100;

export const cpuCollector: Collector = {
  name: "cpu",
  async collect(w, p) {
    const stat = await readText(p.proc, "stat");
    if (stat === null) return;
    for (const f of fields(stat)) {
      if (!/^cpu\d+$/.test(f[0]!)) continue;
      const cpu = f[0]!.slice(3);
      CPU_MODES.forEach((mode, k) => {
        if (f[k + 1] !== undefined) w.counter("node_cpu_seconds_total", { cpu, mode }, Number(f[k + 1]) / USER_HZ, "Seconds the CPUs spent in each mode.");
      });
      // guest and guest_nice (fields 9, 10) are also counted in user and nice; node_exporter reports them apart.
      if (f[9] !== undefined) w.counter("node_cpu_guest_seconds_total", { cpu, mode: "user" }, Number(f[9]) / USER_HZ, "Seconds the CPUs spent in guests (VMs) for each mode.");
      if (f[10] !== undefined) w.counter("node_cpu_guest_seconds_total", { cpu, mode: "nice" }, Number(f[10]) / USER_HZ, "Seconds the CPUs spent in guests (VMs) for each mode.");
    }
  },
};

/** [cpufreq file (kHz), node_cpu_<name>_hertz, help] */
const CPUFREQ: [string, string, string][] = [
  ["scaling_cur_freq", "scaling_frequency", "Current scaled CPU thread frequency in hertz."],
  ["scaling_max_freq", "scaling_frequency_max", "Maximum scaled CPU thread frequency in hertz."],
  ["scaling_min_freq", "scaling_frequency_min", "Minimum scaled CPU thread frequency in hertz."],
  ["cpuinfo_cur_freq", "frequency", "Current CPU thread frequency in hertz."],
  ["cpuinfo_max_freq", "frequency_max", "Maximum CPU thread frequency in hertz."],
  ["cpuinfo_min_freq", "frequency_min", "Minimum CPU thread frequency in hertz."],
];

/** cpufreq (where the kernel has it): node_exporter's node_cpu_*_hertz from /sys/devices/system/cpu/cpuN/cpufreq. */
export const cpufreqCollector: Collector = {
  name: "cpufreq",
  async collect(w, p) {
    const root = join(p.sys, "devices/system/cpu");
    for (const d of listDir(root).filter((x) => /^cpu\d+$/.test(x))) {
      for (const [file, name, help] of CPUFREQ) {
        const v = Number((await readText(root, d, "cpufreq", file))?.trim());
        if (Number.isFinite(v) && v > 0) w.gauge(`node_cpu_${name}_hertz`, { cpu: d.slice(3) }, v * 1000, help);
      }
    }
  },
};

export const statCollector: Collector = {
  name: "stat",
  async collect(w, p) {
    const stat = await readText(p.proc, "stat");
    if (stat === null) return;
    for (const f of fields(stat)) {
      const v = Number(f[1]);
      switch (f[0]) {
        case "intr":
          w.counter("node_intr_total", {}, v, "Total number of interrupts serviced.");
          break;
        case "ctxt":
          w.counter("node_context_switches_total", {}, v, "Total number of context switches.");
          break;
        case "processes":
          w.counter("node_forks_total", {}, v, "Total number of forks.");
          break;
        case "btime":
          w.gauge("node_boot_time_seconds", {}, v, "Node boot time, in unixtime.");
          break;
        case "procs_running":
          w.gauge("node_procs_running", {}, v, "Number of processes in runnable state.");
          break;
        case "procs_blocked":
          w.gauge("node_procs_blocked", {}, v, "Number of processes blocked waiting for I/O to complete.");
          break;
      }
    }
  },
};

export const meminfoCollector: Collector = {
  name: "meminfo",
  async collect(w, p) {
    const text = await readText(p.proc, "meminfo");
    if (text === null) return;
    for (const line of text.split("\n")) {
      const m = /^([A-Za-z0-9_()]+):\s+(\d+)(\s+kB)?/.exec(line);
      if (m === null) continue;
      const field = m[1]!.replace(/\((.*)\)/, "_$1");
      const bytes = m[3] !== undefined;
      const name = `node_memory_${field}${bytes ? "_bytes" : ""}`;
      w.gauge(name, {}, Number(m[2]) * (bytes ? 1024 : 1), `Memory information field ${field}${bytes ? "_bytes" : ""}.`);
    }
  },
};

export const loadavgCollector: Collector = {
  name: "loadavg",
  async collect(w, p) {
    const text = await readText(p.proc, "loadavg");
    if (text === null) return;
    const parts = text.trim().split(/\s+/);
    ["1", "5", "15"].forEach((win, k) => {
      const v = Number(parts[k]);
      if (Number.isFinite(v)) w.gauge(`node_load${win}`, {}, v, `${win}m load average.`);
    });
  },
};

/** node_exporter's default vmstat fields: ^(oom_kill|pgpg|pswp|pg.*fault).* */
const VMSTAT = /^(oom_kill|pgpg|pswp|pg.*fault)/;

export const vmstatCollector: Collector = {
  name: "vmstat",
  async collect(w, p) {
    const text = await readText(p.proc, "vmstat");
    if (text === null) return;
    for (const [k, v] of fields(text)) if (VMSTAT.test(k!)) w.untyped(`node_vmstat_${k}`, {}, Number(v), `/proc/vmstat information field ${k}.`);
  },
};

export const pressureCollector: Collector = {
  name: "pressure",
  async collect(w, p) {
    for (const res of ["cpu", "io", "memory"]) {
      const text = await readText(p.proc, "pressure", res);
      if (text === null) continue;
      for (const f of fields(text)) {
        const total = f.find((x) => x.startsWith("total="));
        if (total === undefined) continue;
        const seconds = Number(total.slice(6)) / 1e6;
        const kind = f[0] === "some" ? "waiting" : f[0] === "full" ? "stalled" : null;
        // The cpu "full" line is not reported by node_exporter 1.5.
        if (kind === null || (res === "cpu" && kind === "stalled")) continue;
        const what = kind === "waiting" ? "waiting" : "stalled";
        w.counter(`node_pressure_${res}_${kind}_seconds_total`, {}, seconds, `Total time in seconds that processes have ${what} for ${res === "cpu" ? "CPU time" : res === "io" ? "I/O" : "memory"}`);
      }
    }
  },
};

export const filefdCollector: Collector = {
  name: "filefd",
  async collect(w, p) {
    const text = await readText(p.proc, "sys/fs/file-nr");
    if (text === null) return;
    const [allocated, , maximum] = text.trim().split(/\s+/);
    w.gauge("node_filefd_allocated", {}, Number(allocated), "File descriptor statistics: allocated.");
    w.gauge("node_filefd_maximum", {}, Number(maximum), "File descriptor statistics: maximum.");
  },
};

export const entropyCollector: Collector = {
  name: "entropy",
  async collect(w, p) {
    const avail = await readText(p.proc, "sys/kernel/random/entropy_avail");
    const pool = await readText(p.proc, "sys/kernel/random/poolsize");
    if (avail !== null) w.gauge("node_entropy_available_bits", {}, Number(avail.trim()), "Bits of available entropy.");
    if (pool !== null) w.gauge("node_entropy_pool_size_bits", {}, Number(pool.trim()), "Bits of entropy pool.");
  },
};
