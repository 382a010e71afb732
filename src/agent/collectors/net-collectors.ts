import { SeriesType } from "../../series/series-def.js";
import { fieldSpans, forEachLine, numberAt } from "./scan.js";
import { RARELY, fields, listDir, readText, type Collector } from "./series-writer.js";

/** Network collectors with node_exporter 1.5's names: netdev, netclass (subset), netstat, sockstat. */
const RX = ["bytes", "packets", "errs", "drop", "fifo", "frame", "compressed", "multicast"];
const TX = ["bytes", "packets", "errs", "drop", "fifo", "colls", "carrier", "compressed"];

export const DEFAULT_NETDEV_EXCLUDE = "^lo$";

/** Each /proc/net/dev field's series: [name, help], receive's then transmit's, made once. */
const NETDEV_SERIES: [string, string][] = [...RX.map((f) => ["receive", f]), ...TX.map((f) => ["transmit", f])].map(([dir, f]) => [`node_network_${dir}_${f}_total`, `Network device statistic ${dir}_${f}.`]);
const devStarts = new Int32Array(32);
const devEnds = new Int32Array(32);
/** Per device: its labels and whether it is left out, decided once per device and exclusion pattern. */
const netdevs = new Map<string, { labels: { device: string }; excluded: boolean; pattern: string }>();
const patterns = new Map<string, RegExp>();

export const netdevCollector: Collector = {
  name: "netdev",
  async collect(w, p) {
    const pattern = p.netdevExclude ?? DEFAULT_NETDEV_EXCLUDE;
    let exclude = patterns.get(pattern);
    if (exclude === undefined) patterns.set(pattern, (exclude = new RegExp(pattern)));
    const text = await readText(p.proc, "net/dev");
    if (text === null) return;
    let line = 0;
    const devices: { device: string }[] = [];
    forEachLine(text, (s, e) => {
      // Two header lines, then "  eth0: rx… tx…".
      if (line++ < 2) return;
      const colon = text.indexOf(":", s);
      if (colon < 0 || colon > e) return;
      let a = s;
      while (a < colon && text.charCodeAt(a) === 32) a++;
      const name = text.slice(a, colon).trim();
      let dev = netdevs.get(name);
      if (dev === undefined || dev.pattern !== pattern) {
        // Debian's node_exporter leaves loopback out (--collector.netdev.device-exclude="^lo$").
        dev = { labels: { device: name }, excluded: exclude!.test(name), pattern };
        if (netdevs.size < 4096) netdevs.set(name, dev);
      }
      if (dev.excluded) return;
      const n = fieldSpans(text, colon + 1, e, devStarts, devEnds);
      for (let k = 0; k < NETDEV_SERIES.length && k < n; k++) w.counter(NETDEV_SERIES[k]![0], dev.labels, numberAt(text, devStarts[k]!, devEnds[k]!), NETDEV_SERIES[k]![1]);
      devices.push(dev.labels);
    });
    for (const labels of devices) {
      // Not in /proc/net/dev (node_exporter reads it over netlink); the kernel has it in sysfs since 4.6.
      const nohandler = Number((await readText(p.sys, "class/net", labels.device, "statistics/rx_nohandler"))?.trim() ?? NaN);
      if (Number.isFinite(nohandler)) w.counter("node_network_receive_nohandler_total", labels, nohandler, "Network device statistic receive_nohandler.");
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
function netstatSeriesOf(proto: string, field: string): { name: string; help: string } | null {
  const key = `${proto}_${field}`;
  let series = netstatSeries.get(key);
  if (series === undefined) {
    series = NETSTAT_FIELDS.test(key) ? { name: `node_netstat_${key}`, help: `Statistic ${proto}${field}.` } : null;
    if (netstatSeries.size < 8192) netstatSeries.set(key, series);
  }
  return series;
}
/** A "Proto: names…" header line → the wanted fields' positions and series, decided once per header. */
const netstatHeaders = new Map<string, { index: number; name: string; help: string }[]>();
const starts = new Int32Array(1024);
const ends = new Int32Array(1024);
/** snmp6 field name → its series or null, decided once. */
const snmp6Series = new Map<string, { name: string; help: string } | null>();

export const netstatCollector: Collector = {
  name: "netstat",
  async collect(w, p) {
    // netstat and snmp: pairs of lines, "Proto: names…" then "Proto: values…".
    for (const file of ["net/netstat", "net/snmp"]) {
      const text = await readText(p.proc, file);
      if (text === null) continue;
      let header = -1;
      let headerEnd = -1;
      forEachLine(text, (s, e) => {
        if (e === s) return;
        if (header < 0) {
          header = s;
          headerEnd = e;
          return;
        }
        const key = text.slice(header, headerEnd);
        header = -1;
        let wanted = netstatHeaders.get(key);
        if (wanted === undefined) {
          const names = key.split(/\s+/);
          const proto = names[0]!.replace(/:$/, "");
          wanted = [];
          for (let j = 1; j < names.length; j++) {
            const series = netstatSeriesOf(proto, names[j]!);
            if (series !== null) wanted.push({ index: j, ...series });
          }
          if (netstatHeaders.size < 64) netstatHeaders.set(key, wanted);
        }
        const n = fieldSpans(text, s, e, starts, ends);
        for (const f of wanted) if (f.index < n) w.untyped(f.name, {}, numberAt(text, starts[f.index]!, ends[f.index]!), f.help);
      });
    }
    // snmp6: "Ip6InOctets   1234" per line.
    const six = await readText(p.proc, "net/snmp6");
    if (six !== null) {
      forEachLine(six, (s, e) => {
        if (fieldSpans(six, s, e, starts, ends) < 2) return;
        const name = six.slice(starts[0]!, ends[0]!);
        let series = snmp6Series.get(name);
        if (series === undefined) {
          const m = /^(Ip6|Icmp6|Udp6|UdpLite6)(.+)$/.exec(name);
          series = m === null ? null : netstatSeriesOf(m[1]!, m[2]!);
          if (snmp6Series.size < 4096) snmp6Series.set(name, series);
        }
        if (series !== null) w.untyped(series.name, {}, numberAt(six, starts[1]!, ends[1]!), series.help);
      });
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
