import { statfs } from "node:fs/promises";
import { fieldSpans, forEachLine, numberAt } from "./scan.js";
import { RARELY, fields, readText, type Collector } from "./series-writer.js";

/** Disk and filesystem collectors with node_exporter 1.5's names, units and default exclusions. */
const DISK_EXCLUDE = /^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$/;
const SECTOR = 512;

/** [field index after the device name, name, help, scale, counter?] as node_exporter 1.5 reports them. */
const DISK_FIELDS: [number, string, string, number, boolean][] = [
  [0, "reads_completed_total", "The total number of reads completed successfully.", 1, true],
  [1, "reads_merged_total", "The total number of reads merged.", 1, true],
  [2, "read_bytes_total", "The total number of bytes read successfully.", SECTOR, true],
  [3, "read_time_seconds_total", "The total number of seconds spent by all reads.", 0.001, true],
  [4, "writes_completed_total", "The total number of writes completed successfully.", 1, true],
  [5, "writes_merged_total", "The number of writes merged.", 1, true],
  [6, "written_bytes_total", "The total number of bytes written successfully.", SECTOR, true],
  [7, "write_time_seconds_total", "This is the total number of seconds spent by all writes.", 0.001, true],
  [8, "io_now", "The number of I/Os currently in progress.", 1, false],
  [9, "io_time_seconds_total", "Total seconds spent doing I/Os.", 0.001, true],
  [10, "io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", 0.001, true],
  [11, "discards_completed_total", "The total number of discards completed successfully.", 1, true],
  [12, "discards_merged_total", "The total number of discards merged.", 1, true],
  [13, "discarded_sectors_total", "The total number of sectors discarded successfully.", 1, true],
  [14, "discard_time_seconds_total", "This is the total number of seconds spent by all discards.", 0.001, true],
  [15, "flush_requests_total", "The total number of flush requests completed successfully", 1, true],
  [16, "flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.", 0.001, true],
];

const DISK_NAMES = DISK_FIELDS.map(([, name]) => `node_disk_${name}`);
const diskStarts = new Int32Array(32);
const diskEnds = new Int32Array(32);
/** Per device (by its line's first three fields): labels and info labels, or null when left out; decided once. */
const disks = new Map<string, { labels: { device: string }; info: Record<string, string> } | null>();

export const diskstatsCollector: Collector = {
  name: "diskstats",
  async collect(w, p) {
    const text = await readText(p.proc, "diskstats");
    if (text === null) return;
    forEachLine(text, (s, e) => {
      const n = fieldSpans(text, s, e, diskStarts, diskEnds);
      if (n < 4) return;
      const id = text.slice(diskStarts[0]!, diskEnds[2]!);
      let disk = disks.get(id);
      if (disk === undefined) {
        const device = text.slice(diskStarts[2]!, diskEnds[2]!);
        const [major, minor] = [text.slice(diskStarts[0]!, diskEnds[0]!), text.slice(diskStarts[1]!, diskEnds[1]!)];
        disk = DISK_EXCLUDE.test(device) ? null : { labels: { device }, info: { device, major, minor, model: "", path: "", revision: "", serial: "", wwn: "" } };
        if (disks.size < 4096) disks.set(id, disk);
      }
      if (disk === null) return;
      w.gauge("node_disk_info", disk.info, 1, "Info of /sys/block/<block_device>.");
      for (let j = 0; j < DISK_FIELDS.length && 3 + j < n; j++) {
        const [k, , help, scale, counter] = DISK_FIELDS[j]!;
        const v = numberAt(text, diskStarts[3 + k]!, diskEnds[3 + k]!) * scale;
        if (counter) w.counter(DISK_NAMES[j]!, disk.labels, v, help);
        else w.gauge(DISK_NAMES[j]!, disk.labels, v, help);
      }
    });
  },
};

/**
 * Debian's node_exporter 1.5 defaults (its build excludes /run, /mnt and /media too; upstream does
 * not): what sites running the packaged exporter see, so Banyan's series match theirs.
 */
export const DEFAULT_MOUNT_POINTS_EXCLUDE = "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
export const DEFAULT_FS_TYPES_EXCLUDE =
  "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/** A statfs that hangs (a dead NFS server) must not hold the tick: give up after this. */
const STATFS_TIMEOUT_MS = 1000;

/** Mount table octal escapes (\040 for a space). */
const unescapeMount = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Sizes and free space move slowly, and each statfs may wait on a remote server: at the slow cadence. */
export const filesystemCollector: Collector = {
  everyTicks: RARELY,
  name: "filesystem",
  async collect(w, p) {
    const MOUNT_EXCLUDE = new RegExp(p.mountPointsExclude ?? DEFAULT_MOUNT_POINTS_EXCLUDE);
    const FSTYPE_EXCLUDE = new RegExp(p.fsTypesExclude ?? DEFAULT_FS_TYPES_EXCLUDE);
    const text = (await readText(p.proc, "1/mounts")) ?? (await readText(p.proc, "mounts"));
    if (text === null) return;
    const seen = new Set<string>();
    for (const f of fields(text)) {
      const [device, rawMount, fstype, options] = [f[0]!, unescapeMount(f[1]!), f[2]!, f[3] ?? ""];
      if (MOUNT_EXCLUDE.test(rawMount) || FSTYPE_EXCLUDE.test(fstype)) continue;
      const key = `${device}\u0000${rawMount}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const labels = { device, fstype, mountpoint: rawMount };
      let st: Awaited<ReturnType<typeof statfs>> | null = null;
      try {
        st = await Promise.race([
          statfs(p.rootfs + rawMount),
          new Promise<never>((_, reject) => setTimeout(() => reject(new Error("timeout")), STATFS_TIMEOUT_MS).unref()),
        ]);
      } catch {
        st = null;
      }
      w.gauge("node_filesystem_device_error", labels, st === null ? 1 : 0, "Whether an error occurred while getting statistics for the given device.");
      if (st === null) continue;
      const bsize = Number(st.bsize);
      w.gauge("node_filesystem_size_bytes", labels, Number(st.blocks) * bsize, "Filesystem size in bytes.");
      w.gauge("node_filesystem_free_bytes", labels, Number(st.bfree) * bsize, "Filesystem free space in bytes.");
      w.gauge("node_filesystem_avail_bytes", labels, Number(st.bavail) * bsize, "Filesystem space available to non-root users in bytes.");
      w.gauge("node_filesystem_files", labels, Number(st.files), "Filesystem total file nodes.");
      w.gauge("node_filesystem_files_free", labels, Number(st.ffree), "Filesystem total free file nodes.");
      w.gauge("node_filesystem_readonly", labels, options.split(",").includes("ro") ? 1 : 0, "Filesystem read-only status.");
    }
  },
};
