import { join } from "node:path";
import { kernelFiles } from "./kernel-files.js";
import { fieldSpans, forEachLine, numberAt, spanIs } from "./scan.js";
import { RARELY, fields, listDir, readText, type Collector } from "./series-writer.js";

/**
 * /proc collectors with node_exporter 1.5's names, labels, types and units: cpu, stat, meminfo,
 * loadavg, vmstat, pressure, filefd, entropy.
 */
const CPU_MODES = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"];
/** USER_HZ: 100 on every Linux architecture node_exporter supports. */
const USER_HZ = 100;

/** Label objects of each CPU's modes, made once: [cpu][mode], then guest user and guest nice. */
const cpuLabels = new Map<string, Record<string, string>[]>();
const starts = new Int32Array(64);
const ends = new Int32Array(64);

export const cpuCollector: Collector = {
  name: "cpu",
  async collect(w, p) {
    const stat = kernelFiles.readShared(join(p.proc, "stat"));
    if (stat === null) return;
    forEachLine(stat, (s, e) => {
      // "cpuN user nice system idle iowait irq softirq steal guest guest_nice" (the "cpu " total line is not a CPU)
      if (!stat.startsWith("cpu", s)) return;
      const c = stat.charCodeAt(s + 3);
      if (c < 48 || c > 57) return;
      const n = fieldSpans(stat, s, e, starts, ends);
      const cpu = stat.slice(s + 3, ends[0]);
      let labels = cpuLabels.get(cpu);
      if (labels === undefined) {
        labels = [...CPU_MODES.map((mode) => ({ cpu, mode })), { cpu, mode: "user" }, { cpu, mode: "nice" }];
        if (cpuLabels.size < 65_536) cpuLabels.set(cpu, labels);
      }
      for (let k = 0; k < CPU_MODES.length && k + 1 < n; k++) w.counter("node_cpu_seconds_total", labels[k]!, numberAt(stat, starts[k + 1]!, ends[k + 1]!) / USER_HZ, "Seconds the CPUs spent in each mode.");
      // guest and guest_nice (fields 9, 10) are also counted in user and nice; node_exporter reports them apart.
      if (n > 9) w.counter("node_cpu_guest_seconds_total", labels[8]!, numberAt(stat, starts[9]!, ends[9]!) / USER_HZ, "Seconds the CPUs spent in guests (VMs) for each mode.");
      if (n > 10) w.counter("node_cpu_guest_seconds_total", labels[9]!, numberAt(stat, starts[10]!, ends[10]!) / USER_HZ, "Seconds the CPUs spent in guests (VMs) for each mode.");
    });
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

/** CPUFREQ entries read every tick (the current frequencies); the limits only every RARELY ticks. */
const CPUFREQ_NOW = CPUFREQ.map(([file]) => file.endsWith("_cur_freq"));
const CPUFREQ_NAMES = CPUFREQ.map(([, name]) => `node_cpu_${name}_hertz`);
/** Per sys root, per CPU directory: its labels and the last value read of each CPUFREQ file (kHz). */
const cpufreqRoots = new Map<string, Map<string, { labels: { cpu: string }; khz: Float64Array }>>();
let cpufreqCalls = 0;

/** cpufreq (where the kernel has it): node_exporter's node_cpu_*_hertz from /sys/devices/system/cpu/cpuN/cpufreq. */
export const cpufreqCollector: Collector = {
  name: "cpufreq",
  async collect(w, p) {
    const root = join(p.sys, "devices/system/cpu");
    const limitsToo = cpufreqCalls++ % RARELY === 0;
    let cpufreqs = cpufreqRoots.get(root);
    if (cpufreqs === undefined) cpufreqRoots.set(root, (cpufreqs = new Map()));
    for (const d of listDir(root)) {
      let cpu = cpufreqs.get(d);
      if (cpu === undefined) {
        if (!/^cpu\d+$/.test(d)) continue;
        cpu = { labels: { cpu: d.slice(3) }, khz: new Float64Array(CPUFREQ.length).fill(NaN) };
        if (cpufreqs.size < 65_536) cpufreqs.set(d, cpu);
      }
      for (let k = 0; k < CPUFREQ.length; k++) {
        const [file, , help] = CPUFREQ[k]!;
        if (CPUFREQ_NOW[k] || limitsToo || Number.isNaN(cpu.khz[k]!)) cpu.khz[k] = Number((await readText(root, d, "cpufreq", file))?.trim());
        const v = cpu.khz[k]!;
        if (Number.isFinite(v) && v > 0) w.gauge(CPUFREQ_NAMES[k]!, cpu.labels, v * 1000, help);
      }
    }
  },
};

/** /proc/stat lines → [name, help, counter?]; the first number of the line is the value (intr's is its total). */
const STAT_LINES: Record<string, [string, string, boolean]> = {
  intr: ["node_intr_total", "Total number of interrupts serviced.", true],
  ctxt: ["node_context_switches_total", "Total number of context switches.", true],
  processes: ["node_forks_total", "Total number of forks.", true],
  btime: ["node_boot_time_seconds", "Node boot time, in unixtime.", false],
  procs_running: ["node_procs_running", "Number of processes in runnable state.", false],
  procs_blocked: ["node_procs_blocked", "Number of processes blocked waiting for I/O to complete.", false],
};
const STAT_KEYS = Object.keys(STAT_LINES);

export const statCollector: Collector = {
  name: "stat",
  async collect(w, p) {
    const stat = kernelFiles.readShared(join(p.proc, "stat"));
    if (stat === null) return;
    forEachLine(stat, (s, e) => {
      // Only the line's first two fields: intr's thousands of per-IRQ counts are never split.
      const sp = stat.indexOf(" ", s);
      if (sp < 0 || sp > e) return;
      for (const key of STAT_KEYS) {
        if (!spanIs(stat, s, sp, key)) continue;
        let end = stat.indexOf(" ", sp + 1);
        if (end < 0 || end > e) end = e;
        const [name, help, counter] = STAT_LINES[key]!;
        if (counter) w.counter(name, {}, numberAt(stat, sp + 1, end), help);
        else w.gauge(name, {}, numberAt(stat, sp + 1, end), help);
        return;
      }
    });
  },
};

/** meminfo field → its series (name, help, kB?), decided once per field the kernel writes. */
const meminfoSeries = new Map<string, { name: string; help: string; scale: number }>();

export const meminfoCollector: Collector = {
  name: "meminfo",
  async collect(w, p) {
    const text = await readText(p.proc, "meminfo");
    if (text === null) return;
    forEachLine(text, (s, e) => {
      // "MemTotal:       16384 kB"
      const colon = text.indexOf(":", s);
      if (colon < 0 || colon > e) return;
      const n = fieldSpans(text, colon + 1, e, starts, ends);
      if (n === 0) return;
      const key = text.slice(s, colon);
      let series = meminfoSeries.get(key);
      if (series === undefined) {
        const field = key.replace(/\((.*)\)/, "_$1");
        const kb = n > 1 && spanIs(text, starts[1]!, ends[1]!, "kB");
        series = { name: `node_memory_${field}${kb ? "_bytes" : ""}`, help: `Memory information field ${field}${kb ? "_bytes" : ""}.`, scale: kb ? 1024 : 1 };
        if (!/^[A-Za-z0-9_]+$/.test(field)) return;
        if (meminfoSeries.size < 1024) meminfoSeries.set(key, series);
      }
      w.gauge(series.name, {}, numberAt(text, starts[0]!, ends[0]!) * series.scale, series.help);
    });
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
/** vmstat field → its series, or null for one node_exporter leaves out; decided once per field. */
const vmstatSeries = new Map<string, { name: string; help: string } | null>();

export const vmstatCollector: Collector = {
  name: "vmstat",
  async collect(w, p) {
    const text = await readText(p.proc, "vmstat");
    if (text === null) return;
    forEachLine(text, (s, e) => {
      const sp = text.indexOf(" ", s);
      if (sp < 0 || sp > e) return;
      const key = text.slice(s, sp);
      let series = vmstatSeries.get(key);
      if (series === undefined) {
        series = VMSTAT.test(key) ? { name: `node_vmstat_${key}`, help: `/proc/vmstat information field ${key}.` } : null;
        if (vmstatSeries.size < 4096) vmstatSeries.set(key, series);
      }
      if (series !== null) w.untyped(series.name, {}, numberAt(text, sp + 1, e), series.help);
    });
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
