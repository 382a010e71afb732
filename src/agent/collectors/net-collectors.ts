import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { RARELY, fields, readText, type Collector } from "./series-writer.js";

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
    }
  },
};

export const netclassCollector: Collector = {
  everyTicks: RARELY,
  name: "netclass",
  async collect(w, p) {
    let ifaces: string[];
    try {
      ifaces = await readdir(join(p.sys, "class/net"));
    } catch {
      return;
    }
    for (const device of ifaces) {
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
      const num = async (a: string, name: string, help: string, scale = 1, counter = false): Promise<void> => {
        const v = Number(await attr(a));
        if ((await attr(a)) === null || !Number.isFinite(v) || v < 0) return;
        if (counter) w.counter(name, { device }, v * scale, help);
        else w.gauge(name, { device }, v * scale, help);
      };
      await num("mtu", "node_network_mtu_bytes", "Network device property: mtu_bytes");
      await num("carrier", "node_network_carrier", "Network device property: carrier");
      await num("tx_queue_len", "node_network_transmit_queue_length", "Network device property: transmit_queue_length");
      await num("speed", "node_network_speed_bytes", "Network device property: speed_bytes", 125_000);
      await num("carrier_changes", "node_network_carrier_changes_total", "Network device property: carrier_changes_total", 1, true);
      await num("carrier_up_count", "node_network_carrier_up_changes_total", "Network device property: carrier_up_changes_total", 1, true);
      await num("carrier_down_count", "node_network_carrier_down_changes_total", "Network device property: carrier_down_changes_total", 1, true);
      await num("addr_assign_type", "node_network_address_assign_type", "Network device property: address_assign_type");
      await num("dev_id", "node_network_device_id", "Network device property: device_id");
      await num("dormant", "node_network_dormant", "Network device property: dormant");
      await num("flags", "node_network_flags", "Network device property: flags");
      await num("ifindex", "node_network_iface_id", "Network device property: iface_id");
      await num("iflink", "node_network_iface_link", "Network device property: iface_link");
      await num("link_mode", "node_network_iface_link_mode", "Network device property: iface_link_mode");
      await num("name_assign_type", "node_network_name_assign_type", "Network device property: name_assign_type");
      await num("netdev_group", "node_network_net_dev_group", "Network device property: net_dev_group");
      await num("type", "node_network_protocol_type", "Network device property: protocol_type");
    }
  },
};

/** node_exporter 1.5's default --collector.netstat.fields. */
const NETSTAT_FIELDS =
  /^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$/;

export const netstatCollector: Collector = {
  name: "netstat",
  async collect(w, p) {
    const put = (proto: string, field: string, value: string): void => {
      const key = `${proto}_${field}`;
      if (NETSTAT_FIELDS.test(key)) w.untyped(`node_netstat_${key}`, {}, Number(value), `Statistic ${proto}${field}.`);
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
