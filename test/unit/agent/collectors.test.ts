import { rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import t from "tap";
import { COLLECTOR_NAMES, NodeSource } from "../../../src/agent/node-source.js";
import { SeriesType } from "../../../src/series/series-def.js";
import { fileTree } from "../../fixtures/file-tree.js";
import { recorder } from "./sources.test.js";

/** A fixture host: proc/, sys/ and a root filesystem with /etc/os-release, written by the test. */
const host = (files: Record<string, string>): string => fileTree(files, "banyan-host-");
const paths = (root: string) => ({ proc: join(root, "proc"), sys: join(root, "sys"), rootfs: root });

const FILES: Record<string, string> = {
  "proc/stat": "cpu  100 0 50 1000 5 0 1 0 0 0\ncpu0 60 0 30 500 3 0 1 0 7 2\ncpu1 40 0 20 500 2 0 0 0 0 0\nintr 336149 1 2\nctxt 916211\nbtime 1795251689\nprocesses 13109\nprocs_running 3\nprocs_blocked 0\n",
  "proc/meminfo": "MemTotal:       24684092 kB\nActive(anon):       1504 kB\nHugePages_Total:       0\n",
  "proc/loadavg": "1.16 0.78 0.60 2/79 7330\n",
  "proc/vmstat": "nr_free_pages 1\npgfault 100\npgmajfault 2\npgpgin 3\npswpin 4\noom_kill 0\nnr_dirty 9\n",
  "proc/pressure/cpu": "some avg10=0.00 avg60=0.00 avg300=0.00 total=25872476\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
  "proc/pressure/io": "some avg10=0.00 avg60=0.00 avg300=0.00 total=1625888\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1054600\n",
  "proc/sys/fs/file-nr": "1184\t0\t9223372036854775807\n",
  "proc/sys/kernel/random/entropy_avail": "256\n",
  "proc/sys/kernel/random/poolsize": "256\n",
  "proc/sys/kernel/domainname": "(none)\n",
  "proc/net/dev":
    "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 2 0 0 0 0 0 0 100 2 0 0 0 0 0 0\n  eth0: 452963199 1000 1 2 0 0 0 5 9000 80 0 0 0 0 0 0\n",
  "proc/net/snmp": "Ip: Forwarding DefaultTTL InReceives\nIp: 1 64 100\nTcp: RtoAlgorithm ActiveOpens InSegs CurrEstab InErrs\nTcp: 1 219 14026 9 0\nUdp: InDatagrams NoPorts InErrors\nUdp: 50 2 0\n",
  "proc/net/netstat": "TcpExt: SyncookiesSent ListenDrops TCPTimeouts DelayedACKs\nTcpExt: 0 3 7 99\nIpExt: InOctets OutOctets\nIpExt: 463813229 1851901\n",
  "proc/net/snmp6": "Ip6InOctets                     123\nIp6InReceives                   9\nUdp6InDatagrams                 4\n",
  "proc/net/sockstat": "sockets: used 8\nTCP: inuse 15 orphan 0 tw 116 alloc 15 mem 772\nUDP: inuse 0 mem 0\n",
  "proc/net/sockstat6": "TCP6: inuse 0\n",
  "proc/net/arp": "IP address       HW type     Flags       HW address            Mask     Device\n10.0.0.1 0x1 0x2 02:fc:00:00:00:01 * eth0\n",
  "proc/diskstats": "   7       0 loop0 1 0 0 0 0 0 0 0 0 0 0\n 254       0 vda 100 5 2048 30 40 2 4096 50 1 70 80 0 0 0 0 3 4\n 254       1 vda1 1 0 0 0 0 0 0 0 0 0 0\n",
  "proc/1/mounts": "/dev/vda / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n/dev/vdb /data\\040dir xfs ro,relatime 0 0\nserver:/gone /nfs nfs rw 0 0\ntmpfs /run tmpfs rw 0 0\n",
  "proc/fs/lustre/llite/scratch-ffff8881/stats": "snapshot_time             1700000000.5 secs.nsecs\nread_bytes                12 samples [bytes] 4096 1048576 123456\nwrite_bytes               3 samples [bytes] 4096 4096 12288\nopen                      7 samples [regs]\n",
  "sys/class/net/eth0/operstate": "up\n",
  "sys/class/net/eth0/address": "02:fc:00:00:00:01\n",
  "sys/class/net/eth0/broadcast": "ff:ff:ff:ff:ff:ff\n",
  "sys/class/net/eth0/duplex": "unknown\n",
  "sys/class/net/eth0/mtu": "1500\n",
  "sys/class/net/eth0/speed": "-1\n",
  "sys/class/net/eth0/statistics/rx_nohandler": "3\n",
  "sys/class/hwmon/hwmon0/name": "coretemp\n",
  "sys/class/hwmon/hwmon0/temp1_input": "55000\n",
  "sys/class/hwmon/hwmon0/temp1_crit": "100000\n",
  "sys/devices/platform/coretemp.0/x": "",
  "sys/bus/platform/x": "",
  "sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_data": "1000\n",
  "sys/class/infiniband/mlx5_0/ports/1/counters/port_xmit_packets": "7\n",
  "sys/class/infiniband/mlx5_0/ports/1/state": "4: ACTIVE\n",
  "sys/class/infiniband/mlx5_0/ports/1/rate": "100 Gb/sec (4X EDR)\n",
  "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "2400000\n",
  "sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3500000\n",
  "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nID=debian\n',
  "data dir/.keep": "",
};

async function collectOnce(root: string, disabled: string[] = []): Promise<ReturnType<typeof recorder>> {
  const rec = recorder();
  await new NodeSource(paths(root), disabled).collect(rec);
  return rec;
}

t.test("collectors - node_exporter 1.5 names, labels, types and units from fixture /proc and /sys", async (t) => {
  const root = host(FILES);
  symlinkSync(join(root, "sys/devices/platform/coretemp.0"), join(root, "sys/class/hwmon/hwmon0/device"));
  symlinkSync(join(root, "sys/bus/platform"), join(root, "sys/devices/platform/coretemp.0/subsystem"));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const rec = await collectOnce(root);
  const v = (k: string): number | undefined => rec.values.get(k);
  const type = (k: string): SeriesType | undefined => rec.defs.get(k)?.type;
  // cpu and stat
  t.equal(v('node_cpu_seconds_total{cpu="0",mode="user"}'), 0.6);
  t.equal(v('node_cpu_guest_seconds_total{cpu="0",mode="user"}'), 0.07);
  t.equal(v('node_cpu_guest_seconds_total{cpu="0",mode="nice"}'), 0.02);
  t.equal(v("node_context_switches_total"), 916211);
  t.equal(v('node_cpu_scaling_frequency_hertz{cpu="0"}'), 2.4e9, "cpufreq kHz → Hz where present");
  t.equal(v('node_cpu_frequency_max_hertz{cpu="0"}'), 3.5e9);
  t.equal(v("node_boot_time_seconds"), 1795251689);
  t.equal(v("node_forks_total"), 13109);
  t.equal(v("node_procs_running"), 3);
  t.equal(type("node_intr_total"), SeriesType.Counter);
  // memory, load, vmstat, pressure, filefd, entropy
  t.equal(v("node_memory_Active_anon_bytes"), 1504 * 1024);
  t.equal(v("node_memory_HugePages_Total"), 0);
  t.equal(v("node_load15"), 0.6);
  t.equal(v("node_vmstat_pgmajfault"), 2);
  t.notOk(rec.values.has("node_vmstat_nr_dirty"), "vmstat: node_exporter's default fields only");
  t.equal(type("node_vmstat_pgfault"), SeriesType.Untyped);
  t.equal(v("node_pressure_cpu_waiting_seconds_total"), 25.872476);
  t.equal(v("node_pressure_io_stalled_seconds_total"), 1.0546);
  t.notOk(rec.values.has("node_pressure_cpu_stalled_seconds_total"));
  t.equal(v("node_filefd_allocated"), 1184);
  t.equal(v("node_entropy_available_bits"), 256);
  // network
  t.equal(v('node_network_receive_bytes_total{device="eth0"}'), 452963199);
  t.equal(v('node_network_receive_multicast_total{device="eth0"}'), 5);
  t.notOk(rec.values.has('node_network_transmit_packets_total{device="lo"}'), "loopback left out, as Debian's node_exporter does");
  t.equal(v('node_network_up{device="eth0"}'), 1);
  t.equal(v('node_network_mtu_bytes{device="eth0"}'), 1500);
  t.equal(v('node_network_speed_bytes{device="eth0"}'), -125000, "speed -1 (unknown) as node_exporter reports it: -1 × 125000");
  t.equal(v('node_network_receive_nohandler_total{device="eth0"}'), 3, "rx_nohandler from sysfs (node_exporter reads it over netlink)");
  t.equal(v('node_network_info{address="02:fc:00:00:00:01",broadcast="ff:ff:ff:ff:ff:ff",device="eth0",duplex="unknown",ifalias="",operstate="up"}'), 1);
  t.equal(v("node_netstat_Tcp_InSegs"), 14026);
  t.equal(v("node_netstat_Ip_Forwarding"), 1);
  t.equal(v("node_netstat_TcpExt_ListenDrops"), 3);
  t.equal(v("node_netstat_IpExt_InOctets"), 463813229);
  t.equal(v("node_netstat_Ip6_InOctets"), 123);
  t.equal(v("node_netstat_Udp6_InDatagrams"), 4);
  t.notOk(rec.values.has("node_netstat_TcpExt_DelayedACKs"), "netstat: default fields only");
  t.notOk(rec.values.has("node_netstat_Ip_DefaultTTL"));
  t.equal(rec.defs.get("node_netstat_Tcp_InSegs")!.help, "Statistic TcpInSegs.");
  t.equal(v("node_sockstat_TCP_tw"), 116);
  t.equal(v("node_sockstat_TCP_mem_bytes"), 772 * 4096);
  t.equal(v("node_sockstat_sockets_used"), 8);
  t.equal(v("node_sockstat_TCP6_inuse"), 0);
  t.equal(v('node_arp_entries{device="eth0"}'), 1);
  // disks and filesystems
  t.equal(v('node_disk_read_bytes_total{device="vda"}'), 2048 * 512);
  t.equal(v('node_disk_read_time_seconds_total{device="vda"}'), 0.03);
  t.equal(v('node_disk_io_now{device="vda"}'), 1);
  t.equal(v('node_disk_flush_requests_total{device="vda"}'), 3);
  t.notOk([...rec.values.keys()].some((k) => /device="(loop0|vda1)"/.test(k)), "loop devices and partitions excluded as node_exporter does");
  t.equal(v('node_disk_info{device="vda",major="254",minor="0",model="",path="",revision="",serial="",wwn=""}'), 1);
  t.ok(v('node_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"}')! > 0, "statfs of a real mount");
  t.equal(v('node_filesystem_readonly{device="/dev/vdb",fstype="xfs",mountpoint="/data dir"}'), 1, "\\040 unescaped, ro option read");
  t.equal(v('node_filesystem_device_error{device="server:/gone",fstype="nfs",mountpoint="/nfs"}'), 1, "a mount that cannot be stat-ed is an error, not a crash");
  t.notOk([...rec.values.keys()].some((k) => k.includes('fstype="proc"')), "pseudo filesystems excluded");
  t.notOk([...rec.values.keys()].some((k) => k.includes('mountpoint="/run"')), "/run excluded (Debian's default)");
  // uname, os, hwmon, InfiniBand, Lustre
  t.ok([...rec.values.keys()].some((k) => k.startsWith("node_uname_info{domainname=\"(none)\",machine=")));
  t.equal(v('node_os_version{id="debian",id_like="",name="Debian GNU/Linux"}'), 12);
  t.equal(v('node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"}'), 55);
  t.equal(v('node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp1"}'), 100);
  t.equal(v('node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"}'), 1);
  t.equal(v('node_infiniband_port_data_received_bytes_total{device="mlx5_0",port="1"}'), 4000, "IB data counters count 4-byte words");
  t.equal(v('node_infiniband_state_id{device="mlx5_0",port="1"}'), 4);
  t.equal(v('node_infiniband_rate_bytes_per_second{device="mlx5_0",port="1"}'), 12.5e9);
  t.equal(v('node_lustre_client_read_bytes_total{fs="scratch"}'), 123456);
  t.equal(v('node_lustre_client_open_calls_total{fs="scratch"}'), 7);
});

t.test("collectors - hot-unplugged CPUs end, missing files are skipped, switched-off collectors write nothing", async (t) => {
  const root = host({ "proc/stat": FILES["proc/stat"]!, "proc/loadavg": FILES["proc/loadavg"]! });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const rec = recorder();
  const src = new NodeSource(paths(root));
  await src.collect(rec);
  t.ok(rec.values.has('node_cpu_seconds_total{cpu="1",mode="idle"}'));
  t.notOk([...rec.values.keys()].some((k) => k.startsWith("node_memory")), "no meminfo file: no memory series, no error");
  writeFileSync(join(root, "proc/stat"), "cpu  1 0 0 0 0 0 0 0\ncpu0 61 0 30 500 3 0 1 0 0 0\nctxt 5\n");
  await src.collect(rec);
  t.equal(rec.removed.filter((k) => k.includes('cpu="1"')).length, 10, "cpu1's eight modes and two guest modes ended");
  t.ok(rec.removed.includes("node_boot_time_seconds"), "a line that vanished ends its series");
  const off = await collectOnce(root, ["cpu", "loadavg"]);
  t.notOk([...off.values.keys()].some((k) => k.startsWith("node_cpu_") || k.startsWith("node_load")));
  t.ok(off.values.has("node_context_switches_total"));
  t.ok(COLLECTOR_NAMES.includes("filesystem") && COLLECTOR_NAMES.length === 32);
});

t.test("collectors - a host with 2,000 mounts reports each once, and a counter that wraps is passed on as it is", async (t) => {
  const mounts = Array.from({ length: 2000 }, (_, k) => `tmpfs /scratch${k} tmpfs rw 0 0`).join("\n") + "\ntmpfs /scratch7 tmpfs rw 0 0\n";
  const files: Record<string, string> = { "proc/1/mounts": mounts, "proc/net/dev": FILES["proc/net/dev"]! };
  for (let k = 0; k < 2000; k++) files[`scratch${k}/.keep`] = "";
  const root = host(files);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const rec = recorder();
  const src = new NodeSource(paths(root), ["uname", "os"]);
  await src.collect(rec);
  t.equal([...rec.values.keys()].filter((k) => k.startsWith("node_filesystem_size_bytes")).length, 2000, "a duplicate mount line counts once");
  writeFileSync(join(root, "proc/net/dev"), FILES["proc/net/dev"]!.replace("452963199", "12"));
  await src.collect(rec);
  t.equal(rec.values.get('node_network_receive_bytes_total{device="eth0"}'), 12, "a wrapped counter is reported as read; the encoder sends the reset exactly");
});
