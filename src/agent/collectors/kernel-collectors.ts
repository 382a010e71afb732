import { RARELY, fields, listDir, readText, type Collector } from "./series-writer.js";
import { LocalZone } from "./time-zone.js";

/** softnet, conntrack, time, UDP queues and SELinux, with node_exporter 1.5's names. */
export const softnetCollector: Collector = {
  name: "softnet",
  async collect(w, p) {
    const text = await readText(p.proc, "net/softnet_stat");
    if (text === null) return;
    fields(text).forEach((f, cpu) => {
      const c = { cpu: String(cpu) };
      w.counter("node_softnet_processed_total", c, parseInt(f[0]!, 16), "Number of processed packets");
      w.counter("node_softnet_dropped_total", c, parseInt(f[1]!, 16), "Number of dropped packets");
      w.counter("node_softnet_times_squeezed_total", c, parseInt(f[2]!, 16), "Number of times processing packets ran out of quota");
    });
  },
};

const CONNTRACK_STATS = ["found", "invalid", "ignore", "insert", "insert_failed", "drop", "early_drop", "search_restart"];

export const conntrackCollector: Collector = {
  name: "conntrack",
  async collect(w, p) {
    const count = await readText(p.proc, "sys/net/netfilter/nf_conntrack_count");
    const max = await readText(p.proc, "sys/net/netfilter/nf_conntrack_max");
    if (count === null) return;
    w.gauge("node_nf_conntrack_entries", {}, Number(count.trim()), "Number of currently allocated flow entries for connection tracking.");
    if (max !== null) w.gauge("node_nf_conntrack_entries_limit", {}, Number(max.trim()), "Maximum size of connection tracking table.");
    const stat = await readText(p.proc, "net/stat/nf_conntrack");
    if (stat === null) return;
    const [head, ...rows] = fields(stat);
    for (const name of CONNTRACK_STATS) {
      const col = head!.indexOf(name);
      if (col < 0) continue;
      const total = rows.reduce((s, r) => s + parseInt(r[col] ?? "0", 16), 0);
      w.gauge(`node_nf_conntrack_stat_${name}`, {}, total, `Number of conntrack ${name.replace(/_/g, " ")} entries.`);
    }
  },
};

/** The process's zone, named as node_exporter names it (Go's time.Now().Zone()). */
const localZone = new LocalZone();

/** Clocksources change only when an admin writes one: per sys root, re-read every RARELY ticks. */
const clocksources = new Map<string, { calls: number; available: Record<string, string>[]; current: Record<string, string>[] }>();

async function readClocksources(sys: string): Promise<{ available: Record<string, string>[]; current: Record<string, string>[] }> {
  const available: Record<string, string>[] = [];
  const current: Record<string, string>[] = [];
  for (const d of listDir(sys, "devices/system/clocksource").filter((x) => /^clocksource\d+$/.test(x))) {
    const device = d.slice("clocksource".length);
    for (const cs of ((await readText(sys, "devices/system/clocksource", d, "available_clocksource")) ?? "").trim().split(/\s+/).filter(Boolean)) available.push({ clocksource: cs, device });
    const cur = ((await readText(sys, "devices/system/clocksource", d, "current_clocksource")) ?? "").trim();
    if (cur !== "") current.push({ clocksource: cur, device });
  }
  return { available, current };
}

export const timeCollector: Collector = {
  name: "time",
  async collect(w, p) {
    const now = Date.now() / 1000;
    w.gauge("node_time_seconds", {}, now, "System time in seconds since epoch (1970).");
    const offsetS = -new Date().getTimezoneOffset() * 60;
    w.gauge("node_time_zone_offset_seconds", { time_zone: localZone.name(now, offsetS) }, offsetS, "System time zone offset in seconds.");
    let cs = clocksources.get(p.sys);
    if (cs === undefined || cs.calls % RARELY === 0) {
      cs = { calls: cs?.calls ?? 0, ...(await readClocksources(p.sys)) };
      if (clocksources.size < 16 || clocksources.has(p.sys)) clocksources.set(p.sys, cs);
    }
    cs.calls++;
    for (const labels of cs.available) w.gauge("node_time_clocksource_available_info", labels, 1, "Available clocksources read from '/sys/devices/system/clocksource'.");
    for (const labels of cs.current) w.gauge("node_time_clocksource_current_info", labels, 1, "Current clocksource read from '/sys/devices/system/clocksource'.");
  },
};

export const udpQueuesCollector: Collector = {
  name: "udp_queues",
  async collect(w, p) {
    for (const [file, ip] of [["net/udp", "v4"], ["net/udp6", "v6"]] as const) {
      const text = await readText(p.proc, file);
      if (text === null) continue;
      let tx = 0;
      let rx = 0;
      for (const f of fields(text).slice(1)) {
        const [t, r] = (f[4] ?? "0:0").split(":");
        tx += parseInt(t!, 16);
        rx += parseInt(r!, 16);
      }
      w.gauge("node_udp_queues", { ip, queue: "tx" }, tx, "Number of allocated memory in the kernel for UDP datagrams in bytes.");
      w.gauge("node_udp_queues", { ip, queue: "rx" }, rx, "Number of allocated memory in the kernel for UDP datagrams in bytes.");
    }
  },
};

export const selinuxCollector: Collector = {
  everyTicks: RARELY,
  name: "selinux",
  async collect(w, p) {
    const enforce = await readText(p.sys, "fs/selinux/enforce");
    w.gauge("node_selinux_enabled", {}, enforce === null ? 0 : 1, "SELinux is enabled, 1 is true, 0 is false");
    if (enforce !== null) w.gauge("node_selinux_current_mode", {}, Number(enforce.trim()), "SELinux is enforcing, 1 is true, 0 is false");
  },
};
