import { SeriesType } from "../../series/series-def.js";
import { RARELY, fields, listDir, readText, type Collector } from "./series-writer.js";

/** Network collectors with node_exporter 1.5's names: netdev, netclass (subset), netstat, sockstat. */
const RX = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"];
const TX = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"];

export const DEFAULT_NETDEV_EXCLUDE = "^lo$";

export const netdevCollector: Collector = {
  name: "netdev",
  async collect(w, p) {
    const exclude = new RegExp(p.netdevExclude ?? DEFAULT_NETDEV_EXCLUDE);
    const text = await readText(p.proc, "net/dev");
    if (text === null) return;
    for (const line of text.split("\n").slice(2)) {
      const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
      if (m === null) continue;
      const device = m[1]!.trim();
      // Debian's node_exporter leaves loopback out (--collector.netdev.device-exclude="^lo$").
      if (exclude.test(device)) continue;
      const v = m[2]!.trim().split(/\s+/).map(Number);
      RX.forEach((f, k) => w.counter(`node_network_receive_${f}_total`, { device }, v[k]!, `Network device statistic receive_${f}.`));
      TX.forEach((f, k) => w.counter(`node_network_transmit_${f}_total`, { device }, v[k + 8]!, `Network device statistic transmit_${f}.`));
      // Not in /proc/net/dev (node_exporter reads it over netlink); the kernel has it in sysfs since 4.6.
      const nohandler = Number((await readText(p.sys, "class/net", device, "statistics/rx_nohandler"))?.trim() ?? NaN);
      if (Number.isFinite(nohandler)) w.counter("node_network_receive_nohandler_total", { device }, nohandler, "Network device statistic receive_nohandler.");
    }
  },
};

/** [sysfs attribute, node_network_<name>, scale, counter]: numeric interface properties. */
const NETCLASS: [string, string, number, boolean][] = [
  ["mtu", "mtu_bytes", 1, false],
  ["carrier", "carrier", 1, false],
  ["tx_queue_len", "transmit_queue_length", 1, false],
  ["speed", "speed_bytes", 125_000, false],
  ["carrier_changes", "carrier_changes_total", 1, true],
  ["carrier_up_count", "carrier_up_changes_total", 1, true],
  ["carrier_down_count", "carrier_down_changes_total", 1, true],
  ["addr_assign_type", "address_assign_type", 1, false],
  ["dev_id", "device_id", 1, false],
  ["dormant", "dormant", 1, false],
  ["flags", "flags", 1, false],
  ["ifindex", "iface_id", 1, false],
  ["iflink", "iface_link", 1, false],
  ["link_mode", "iface_link_mode", 1, false],
  ["name_assign_type", "name_assign_type", 1, false],
  ["netdev_group", "net_dev_group", 1, false],
  ["type", "protocol_type", 1, false],
];

export const netclassCollector: Collector = {
  everyTicks: RARELY,
  name: "netclass",
  async collect(w, p) {
    for (const device of listDir(p.sys, "class/net")) {
      const attr = async (a: string): Promise<string | null> => (await readText(p.sys, "class/net", device, a))?.trim() ?? null;
      const operstate = (await attr("operstate")) ?? "";
      w.gauge("node_network_up", { device }, operstate === "up" ? 1 : 0, "Value is 1 if operstate is 'up', 0 otherwise.");
      const labels = {
        address: (await attr("address")) ?? "",
        broadcast: (await attr("broadcast")) ?? "",
        device,
        duplex: (await attr("duplex")) ?? "",
        ifalias: (await attr("ifalias")) ?? "",
        operstate,
      };
      w.gauge("node_network_info", labels, 1, "Non-numeric data from /sys/class/net/<iface>, value is always 1.");
      for (const [file, name, scale, counter] of NETCLASS) {
        const raw = await attr(file);
        const v = Number(raw); // hex attributes (flags, dev_id) parse as 0x…
        // A driver that cannot tell its speed says -1: node_exporter exports -1 × 125000, and so do we.
        if (raw === null || raw === "" || !Number.isFinite(v) || (v < 0 && file !== "speed")) continue;
        w.put(`node_network_${name}`, { device }, v * scale, counter ? SeriesType.Counter : SeriesType.Gauge, `Network device property: ${name}`);
      }
    }
  },
};

/** node_exporter 1.5's default --collector.netstat.fields. */
const NETSTAT_FIELDS =
  /^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$/;

/** proto_field → the series' name and help, or null for a field node_exporter leaves out; decided once. */
const netstatSeries = new Map<string, { name: string; help: string } | null>();

export const netstatCollector: Collector = {
  name: "netstat",
  async collect(w, p) {
    const put = (proto: string, field: string, value: string): void => {
      const key = `${proto}_${field}`;
      let series = netstatSeries.get(key);
      if (series === undefined) {
        series = NETSTAT_FIELDS.test(key) ? { name: `node_netstat_${key}`, help: `Statistic ${proto}${field}.` } : null;
        netstatSeries.set(key, series);
      }
      if (series !== null) w.untyped(series.name, {}, Number(value), series.help);
    };
    // netstat and snmp: pairs of lines, "Proto: names…" then "Proto: values…".
    for (const file of ["net/netstat", "net/snmp"]) {
      const text = await readText(p.proc, file);
      if (text === null) continue;
      const lines = text.split("\n").filter((l) => l.trim() !== "");
      for (let k = 0; k + 1 < lines.length; k += 2) {
        const names = lines[k]!.split(/\s+/);
        const values = lines[k + 1]!.split(/\s+/);
        const proto = names[0]!.replace(/:$/, "");
        for (let j = 1; j < names.length; j++) put(proto, names[j]!, values[j]!);
      }
    }
    // snmp6: "Ip6InOctets   1234" per line.
    const six = await readText(p.proc, "net/snmp6");
    if (six !== null) {
      for (const [name, value] of fields(six)) {
        const m = /^(Ip6|Icmp6|Udp6|UdpLite6)(.+)$/.exec(name!);
        if (m !== null) put(m[1]!, m[2]!, value!);
      }
    }
  },
};

const PAGE_SIZE = 4096;

export const sockstatCollector: Collector = {
  name: "sockstat",
  async collect(w, p) {
    for (const file of ["net/sockstat", "net/sockstat6"]) {
      const text = await readText(p.proc, file);
      if (text === null) continue;
      for (const f of fields(text)) {
        const proto = f[0]!.replace(/:$/, "");
        for (let k = 1; k + 1 < f.length; k += 2) {
          const state = f[k]!;
          const v = Number(f[k + 1]);
          if (proto === "sockets") {
            w.gauge("node_sockstat_sockets_used", {}, v, "Number of IPv4 sockets in use.");
            continue;
          }
          w.gauge(`node_sockstat_${proto}_${state}`, {}, v, `Number of ${proto} sockets in state ${state}.`);
          if (state === "mem") w.gauge(`node_sockstat_${proto}_mem_bytes`, {}, v * PAGE_SIZE, `Number of ${proto} sockets in state mem_bytes.`);
        }
      }
    }
  },
};
