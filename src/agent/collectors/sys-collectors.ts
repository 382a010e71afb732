import { readlink } from "node:fs/promises";
import { hostname, machine, release, type, version } from "node:os";
import { basename, join } from "node:path";
import { RARELY, fields, listDir, readText, type Collector } from "./series-writer.js";

/** uname, os, hwmon (temperatures, power, energy), InfiniBand, Lustre client and ARP collectors (node_exporter 1.5 names where it has them). */
export const unameCollector: Collector = {
  everyTicks: RARELY,
  name: "uname",
  async collect(w, p) {
    const domain = ((await readText(p.proc, "sys/kernel/domainname")) ?? "(none)").trim();
    w.gauge(
      "node_uname_info",
      { domainname: domain, machine: machine(), nodename: hostname(), release: release(), sysname: type(), version: version() },
      1,
      "Labeled system information as provided by the uname system call.",
    );
  },
};

const OS_LABELS = ["build_id", "id", "id_like", "image_id", "image_version", "name", "pretty_name", "variant", "variant_id", "version", "version_codename", "version_id"];

export const osCollector: Collector = {
  everyTicks: RARELY,
  name: "os",
  async collect(w, p) {
    const text = (await readText(p.rootfs + "/etc/os-release")) ?? (await readText(p.rootfs + "/usr/lib/os-release"));
    if (text === null) return;
    const kv = new Map<string, string>();
    for (const line of text.split("\n")) {
      const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line.trim());
      if (m) kv.set(m[1]!.toLowerCase(), m[3]!);
    }
    const labels: Record<string, string> = {};
    for (const l of OS_LABELS) labels[l] = kv.get(l) ?? "";
    w.gauge("node_os_info", labels, 1, `A metric with a constant '1' value labeled by ${OS_LABELS.join(", ")}.`);
    const v = /^(\d+(\.\d+)?)/.exec(kv.get("version_id") ?? "");
    if (v) w.gauge("node_os_version", { id: labels["id"]!, id_like: labels["id_like"]!, name: labels["name"]! }, Number(v[1]), "Metric containing the major.minor part of the OS version.");
  },
};

/** node_exporter's chip name: "<subsystem>_<device>" of the hwmon's device (platform_coretemp_0), else the hwmon directory. */
async function chipName(dir: string): Promise<string> {
  try {
    const dev = basename(await readlink(join(dir, "device")));
    const sub = basename(await readlink(join(dir, "device", "subsystem")));
    return `${sub}_${dev}`.replace(/[^a-zA-Z0-9_]/g, "_").toLowerCase();
  } catch {
    return basename(dir);
  }
}

export const hwmonCollector: Collector = {
  name: "hwmon",
  async collect(w, p) {
    const root = join(p.sys, "class/hwmon");
    for (const hw of listDir(root)) {
      const dir = join(root, hw);
      const chip = await chipName(dir);
      const name = (await readText(dir, "name"))?.trim();
      if (name !== undefined) w.gauge("node_hwmon_chip_names", { chip, chip_name: name }, 1, "Annotation metric for human-readable chip names");
      for (const file of listDir(dir)) {
        const m = /^(temp\d+|power\d+|energy\d+)_(input|max|crit|average)$/.exec(file);
        if (m === null) continue;
        const v = Number((await readText(dir, file))?.trim());
        if (!Number.isFinite(v)) continue;
        const sensor = m[1]!;
        if (sensor.startsWith("temp")) {
          if (m[2] === "average") continue;
          const metric = m[2] === "input" ? "node_hwmon_temp_celsius" : `node_hwmon_temp_${m[2]}_celsius`;
          w.gauge(metric, { chip, sensor }, v / 1000, `Hardware monitor for temperature (${m[2]})`);
        } else if (sensor.startsWith("power")) {
          // Microwatts, as node_exporter's node_hwmon_power_<property>_watt (a BMC or GPU power where hwmon has it).
          w.gauge(`node_hwmon_power_${m[2]}_watt`, { chip, sensor }, v / 1e6, `Hardware monitor for power usage in watts (${m[2]})`);
        } else if (m[2] === "input") w.counter("node_hwmon_energy_joule_total", { chip, sensor }, v / 1e6, "Hardware monitor for joules used so far (input)");
      }
    }
  },
};

/** [counter file, metric, multiplier, help]: data counters count 32-bit words. */
const IB_COUNTERS: [string, string, number, string][] = [
  ["port_rcv_data", "node_infiniband_port_data_received_bytes_total", 4, "Number of data octets received on all links"],
  ["port_xmit_data", "node_infiniband_port_data_transmitted_bytes_total", 4, "Number of data octets transmitted on all links"],
  ["port_rcv_packets", "node_infiniband_port_packets_received_total", 1, "Number of packets received on all VLs by this port (including errors)"],
  ["port_xmit_packets", "node_infiniband_port_packets_transmitted_total", 1, "Number of packets transmitted on all VLs from this port (including errors)"],
  ["port_rcv_errors", "node_infiniband_port_errors_received_total", 1, "Number of packets containing an error that were received on this port"],
  ["port_xmit_discards", "node_infiniband_port_transmit_discards_total", 1, "Number of packets dropped because the port is down or congested"],
  ["symbol_error", "node_infiniband_symbol_error_total", 1, "Number of minor link errors detected on one or more physical lanes."],
  ["link_downed", "node_infiniband_link_downed_total", 1, "Number of times the link failed to recover from an error state and went down"],
  ["link_error_recovery", "node_infiniband_link_error_recovery_total", 1, "Number of times the link successfully recovered from an error state"],
];

export const infinibandCollector: Collector = {
  name: "infiniband",
  async collect(w, p) {
    const root = join(p.sys, "class/infiniband");
    for (const device of listDir(root)) {
      for (const port of listDir(join(root, device, "ports"))) {
        const dir = join(root, device, "ports", port);
        for (const [file, metric, mult, help] of IB_COUNTERS) {
          const raw = (await readText(dir, "counters", file))?.trim();
          if (raw === undefined || raw === "") continue;
          w.counter(metric, { device, port }, Number(raw) * mult, help);
        }
        const state = /^(\d+):/.exec((await readText(dir, "state")) ?? "");
        if (state) w.gauge("node_infiniband_state_id", { device, port }, Number(state[1]), "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)");
        const rate = /^([\d.]+) Gb\/sec/.exec((await readText(dir, "rate")) ?? "");
        if (rate) w.gauge("node_infiniband_rate_bytes_per_second", { device, port }, (Number(rate[1]) * 1e9) / 8, "Maximum signal transfer rate");
      }
    }
  },
};

/** The EFA hw_counters the HyperPod node_exporter fork exports (node_amazonefa_<name>), with its HELP texts, and the SRD retransmit counters of newer EFA drivers. */
const EFA_COUNTERS: readonly (readonly [string, string])[] = [
  ["alloc_pd_err", "Number of allocations PD errors"],
  ["alloc_ucontext_err", "Number of allocations UContext errors"],
  ["cmds_err", "Number of commands errors"],
  ["completed_cmds", "Number of completed commands"],
  ["create_ah_err", "Number of create AH errors"],
  ["create_cq_err", "Number of create CQ errors"],
  ["create_qp_err", "Number of create qp errors"],
  ["keep_alive_rcvd", "Number of keep-alive packets received"],
  ["lifespan", "Lifespan of the port"],
  ["mmap_err", "Number of mmap errors"],
  ["no_completion_cmds", "Number of commands with no completion"],
  ["rdma_read_bytes", "Number of bytes read with RDMA"],
  ["rdma_read_resp_bytes", "Number of read reponses bytes with RDMA"],
  ["rdma_read_wr_err", "Number of read write errors with RDMA"],
  ["rdma_read_wrs", "Number of read rs with RDMA"],
  ["rdma_write_bytes", "Number of bytes wrote with RDMA"],
  ["rdma_write_recv_bytes", "Number of bytes wrote and received with RDMA"],
  ["rdma_write_wr_err", "Number of bytes wrote wr with error RDMA"],
  ["rdma_write_wrs", "Number of bytes wrote wrs RDMA"],
  ["recv_bytes", "Number of bytes recv bytes"],
  ["recv_wrs", "Number of bytes recv wrs"],
  ["reg_mr_err", "Number of reg_mr errors"],
  ["rx_bytes", "Number of bytes received"],
  ["rx_drops", "Number of packets droped"],
  ["rx_pkts", "Number of packets received"],
  ["send_bytes", "Number of bytes send"],
  ["send_wrs", "Number of wrs send"],
  ["submitted_cmds", "Number of submitted commands"],
  ["tx_bytes", "Number of bytes transmitted"],
  ["tx_pkts", "Number of packets transmitted"],
  ["retrans_bytes", "Number of bytes retransmitted"],
  ["retrans_pkts", "Number of packets retransmitted"],
  ["retrans_timeout_events", "Number of retransmit timeout events"],
  ["impaired_remote_conn_events", "Number of impaired remote connection events"],
  ["unresponsive_remote_events", "Number of unresponsive remote events"],
];

/**
 * Amazon EFA devices (the `efa` driver's entries in /sys/class/infiniband) with the names of the
 * node_exporter fork SageMaker HyperPod runs: `node_amazonefa_info{device}` and a counter per
 * hw_counters file, `node_amazonefa_<counter>{device,port}`. Other RDMA devices (mlx5 has a
 * `lifespan` too) are left to the infiniband collector.
 */
export const amazonEfaCollector: Collector = {
  name: "amazonefa",
  async collect(w, p) {
    const root = join(p.sys, "class/infiniband");
    for (const device of listDir(root)) {
      const driver = await readlink(join(root, device, "device/driver")).catch(() => "");
      if (basename(driver) !== "efa") continue;
      w.gauge("node_amazonefa_info", { device }, 1, "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.");
      for (const port of listDir(join(root, device, "ports"))) {
        const dir = join(root, device, "ports", port, "hw_counters");
        for (const [name, help] of EFA_COUNTERS) {
          const raw = (await readText(dir, name))?.trim();
          if (raw === undefined || raw === "" || !/^\d+$/.test(raw)) continue;
          w.counter(`node_amazonefa_${name}`, { device, port }, Number(raw), help);
        }
      }
    }
  },
};

/**
 * Lustre client (llite) stats: node_exporter has none, so these follow its style under
 * node_lustre_client_*: bytes read and written, and the count of every operation, per filesystem.
 */
export const lustreCollector: Collector = {
  name: "lustre",
  async collect(w, p) {
    for (const base of [join(p.proc, "fs/lustre/llite"), join(p.sys, "kernel/debug/lustre/llite")]) {
      for (const mount of listDir(base)) {
        const text = await readText(base, mount, "stats");
        if (text === null) continue;
        const fs = mount.replace(/-[0-9a-f]+$/, "");
        for (const f of fields(text)) {
          if (f[0] === "snapshot_time" || f[3] === undefined) continue;
          const op = f[0]!.replace(/[^a-zA-Z0-9_]/g, "_");
          if (f[3] === "[bytes]" && f[6] !== undefined) {
            w.counter(`node_lustre_client_${op}_total`, { fs }, Number(f[6]), `Lustre client ${f[0]}: bytes.`);
          } else {
            w.counter(`node_lustre_client_${op}_calls_total`, { fs }, Number(f[1]), `Lustre client ${f[0]}: operations.`);
          }
        }
      }
    }
  },
};

export const arpCollector: Collector = {
  everyTicks: RARELY,
  name: "arp",
  async collect(w, p) {
    const text = await readText(p.proc, "net/arp");
    if (text === null) return;
    const counts = new Map<string, number>();
    for (const f of fields(text).slice(1)) if (f[5] !== undefined) counts.set(f[5], (counts.get(f[5]) ?? 0) + 1);
    for (const [device, n] of counts) w.gauge("node_arp_entries", { device }, n, "ARP entries by device");
  },
};
