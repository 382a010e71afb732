import { z } from "zod";
import { parseCpuList } from "./scheduling.js";
import { httpBoundsFields } from "../core/http-bounds.js";
import { parseConfig, type ConfigSource } from "../core/config-file.js";
import { nodeSchemaFields, positiveInt } from "../wire/wire-config.js";
import { DEFAULT_FS_TYPES_EXCLUDE, DEFAULT_MOUNT_POINTS_EXCLUDE } from "./collectors/disk-collectors.js";
import { DEFAULT_NETDEV_EXCLUDE } from "./collectors/net-collectors.js";
import { COLLECTOR_NAMES } from "./node-source.js";

const precisionRule = z.strictObject({
  /** Metric name glob (`*`, `?`). */
  match: z.string().min(1),
  /** A value is sent when it moved more than max(relative × |value|, absolute) since it was last sent (0 and 0: every change). */
  relative: z.number().min(0).max(1).default(0),
  /** The absolute part of that bound, in the metric's unit. */
  absolute: z.number().min(0).default(0),
});

const pushSchema = z
  .strictObject({
    ...httpBoundsFields,
    /** Largest request body, bytes (after decompression); default 1 MiB. */
    maxBodyBytes: z.number().int().positive().optional(),
    /** Series one group (a job and grouping labels, as the Pushgateway's) may hold; default 10,000. */
    maxSeriesPerGroup: z.number().int().positive().optional(),
    /** Groups the node holds at once; default 1000. */
    maxGroups: z.number().int().positive().optional(),
    /** Pushed series the node holds, all groups together; default 50,000. */
    maxSeries: z.number().int().positive().optional(),
    /** Every push needs a token: its job's, or the node's push token (nodeTokenFile) for a group of no job. */
    requireToken: z.boolean().optional(),
    /** Where the node's push token is written at start (default: <runDir>/push.token). */
    nodeTokenFile: z.string().min(1).optional(),
    /** The group (name or gid) that may read the node's push token; default: root only. */
    nodeTokenGroup: z.union([z.string().min(1), z.number().int().nonnegative()]).optional(),
    /** Prometheus' web config file (tls_server_config, basic_auth_users) in front of the push API. */
    webConfigFile: z.string().min(1).optional(),
  })
  .default({});

export const agentConfigSchema = z.strictObject({
  ...nodeSchemaFields,
  /**
   * Every keyframe interval the node sends the absolute value of every series (definitions travel
   * once per epoch), at its own phase of the interval (from its name), so keyframes never bunch up.
   */
  keyframeIntervalMs: positiveInt.default(60_000),
  /**
   * After a start the node sends nothing until its phase within this window, so a cluster started
   * at once sends its first (full) keyframes spread out. Default: about 250 nodes a second over
   * the topology's size (0 below 250 nodes), at most keyframeIntervalMs. 0: at once.
   */
  startSpreadMs: z.number().int().nonnegative().optional(),
  /** Where the metrics come from. */
  source: z.enum(["procfs", "synthetic"]).default("procfs"),
  /** CPUs the agent runs on, a Linux CPU list ("0", "0-1"): a core the site keeps for system daemons. Absent: any. */
  cpuAffinity: z
    .union([z.string(), z.number().int().nonnegative()])
    .transform(String)
    .refine((v) => {
      try {
        parseCpuList(v);
        return true;
      } catch {
        return false;
      }
    }, "expected a Linux CPU list such as 0 or 0-1,64")
    .optional(),
  /** Nice value of the agent's threads (-20..19; below 0 needs root). Absent: as started. */
  nice: z.number().int().min(-20).max(19).optional(),
  /** Linux scheduling policy: other (default), batch (no wake-up preemption), idle (only on an otherwise idle core). */
  schedPolicy: z.enum(["other", "batch", "idle"]).default("other"),
  /** `job` label of the agent's own series. */
  job: z.string().min(1).optional(),
  /** The procfs source: node_exporter's collectors, read from /proc and /sys. */
  procfs: z
    .strictObject({
      /** Root of the proc filesystem (tests point it at a fixture tree). */
      path: z.string().default("/proc"),
      /** Root of sysfs. */
      sys: z.string().default("/sys"),
      /** Prefix of mount points for filesystem statistics and /etc/os-release ("" on the host; "/host" in a container). */
      rootfs: z.string().default(""),
      /** Collectors switched off, by name. */
      disable: z.array(z.enum(COLLECTOR_NAMES as [string, ...string[]])).default([]),
      /** Mount points and filesystem types left out (node_exporter's flags; Debian's defaults). */
      mountPointsExclude: z.string().default(DEFAULT_MOUNT_POINTS_EXCLUDE),
      /** Filesystem types left out (a regexp, node_exporter's --collector.filesystem.fs-types-exclude). */
      fsTypesExclude: z.string().default(DEFAULT_FS_TYPES_EXCLUDE),
      /** Network devices left out (a regexp, node_exporter's --collector.netdev.device-exclude). */
      netdevExclude: z.string().default(DEFAULT_NETDEV_EXCLUDE),
      /** node_exporter's --collector.textfile.directory: `*.prom` files of the site's own node metrics ("": none). */
      textfileDirectory: z.string().default(""),
    })
    .default({ path: "/proc", sys: "/sys", rootfs: "", disable: [], mountPointsExclude: DEFAULT_MOUNT_POINTS_EXCLUDE, fsTypesExclude: DEFAULT_FS_TYPES_EXCLUDE, netdevExclude: DEFAULT_NETDEV_EXCLUDE, textfileDirectory: "" }),
  /** The synthetic source (`source: synthetic`): made-up series with node_exporter's change rate, for benches and tests. */
  synthetic: z
    .strictObject({
      /** Series per node. */
      series: positiveInt.default(500),
      /** Share of the series that change in a tick (default: an idle node, calibrated on node_exporter). */
      changeRate: z.number().min(0).max(1).default(0.023),
      /** Seed of the values' random walk (mixed with the node's name). */
      seed: z.number().int().default(1),
    })
    .default({ series: 500, changeRate: 0.023, seed: 1 }),
  /** More sources beside the node's own collectors. */
  sources: z
    .strictObject({
      /** Local Prometheus endpoints to scrape each interval (dcgm-exporter, node_exporter, an application). */
      scrape: z
        .array(
          z.strictObject({
            /** The endpoint (`http://127.0.0.1:9400/metrics`). */
            url: z.url(),
            /** `job` label of its series. */
            job: z.string().min(1),
            /** How often; default: the agent's intervalMs. */
            intervalMs: positiveInt.optional(),
            /** A scrape not answered this long is skipped; default: half the agent's intervalMs (at least 100). */
            timeoutMs: positiveInt.optional(),
          }),
        )
        .default([]),
      /** GPUs without dcgm-exporter: a long-lived nvidia-smi mapped to dcgm-exporter's names. */
      nvidiaSmi: z
        .strictObject({
          /** Run nvidia-smi. */
          enabled: z.boolean().default(false),
          /** The nvidia-smi program (a name looked up in PATH, or a path). */
          path: z.string().default("nvidia-smi"),
        })
        .default({ enabled: false, path: "nvidia-smi" }),
      /** The node's power from its BMC (`ipmitool dcmi power reading`), as ipmi_exporter's ipmi_dcmi_power_consumption_watts; a job's share of the node's energy uses it. */
      ipmi: z
        .strictObject({
          /** Ask the BMC (needs root, or access to /dev/ipmi0). */
          enabled: z.boolean().default(false),
          /** The ipmitool program (a name looked up in PATH, or a path). */
          path: z.string().default("ipmitool"),
          /** How often it is asked: slower than the agent's interval (a BMC refreshes its reading every second or few). */
          intervalMs: positiveInt.default(10_000),
          /** An answer not given this long is given up (the last reading is dropped). */
          timeoutMs: positiveInt.default(5000),
          /**
           * Ask the BMC over Redfish instead of ipmitool: its power resource's URL
           * (`https://<bmc>/redfish/v1/Chassis/1/Power`, or a power sensor's); "": ipmitool.
           */
          redfishUrl: z.union([z.literal(""), z.url()]).default(""),
          /** A file whose first line is `user:password` for the BMC (mode 0600); unset: no auth. */
          redfishCredentialsFile: z.string().optional(),
          /** A CA file the BMC's certificate is checked against (BMCs often have their own). */
          redfishCaFile: z.string().optional(),
          /** Do not check the BMC's certificate at all. */
          redfishInsecureSkipVerify: z.boolean().default(false),
        })
        .default({ enabled: false, path: "ipmitool", intervalMs: 10_000, timeoutMs: 5000, redfishUrl: "", redfishInsecureSkipVerify: false }),
      /** Scheduler metrics (sinfo, squeue, sdiag) under prometheus-slurm-exporter's names: for the agent on the root's host. */
      slurm: z
        .strictObject({
          /** Ask Slurm (on one node only: the one beside slurmctld). */
          enabled: z.boolean().default(false),
          /** How often the commands run. */
          intervalMs: positiveInt.default(30_000),
          /** A command that has not finished this long is killed (the last figures stay). */
          timeoutMs: positiveInt.default(10_000),
          /** Directory of sinfo, squeue, sdiag and scontrol ("": found in PATH and Slurm's usual places). */
          binDir: z.string().default(""),
          /**
           * slurmctld's own metrics (Slurm 25.11+, `MetricsType=metrics/openmetrics`), e.g.
           * `http://slurmctld:6817`: its pages stand in for squeue, sdiag and sinfo's summaries (the
           * commands are asked again while it cannot be read: off, PrivateData); "": off.
           */
          slurmctldUrl: z.string().default(""),
        })
        .default({ enabled: false, intervalMs: 30_000, timeoutMs: 10_000, binDir: "", slurmctldUrl: "" }),
    })
    .default({ scrape: [], nvidiaSmi: { enabled: false, path: "nvidia-smi" }, ipmi: { enabled: false, path: "ipmitool", intervalMs: 10_000, timeoutMs: 5000, redfishUrl: "", redfishInsecureSkipVerify: false }, slurm: { enabled: false, intervalMs: 30_000, timeoutMs: 10_000, binDir: "", slurmctldUrl: "" } }),
  /**
   * Slurm jobs on this node: the control socket `banyan job start|end` speak to (root only), the
   * per-job cgroup accounting and reports, and the push API. Off unless a site turns it on (the
   * prolog's `banyan job start` turns it on when it starts the agent itself).
   */
  jobs: z
    .strictObject({
      /** The Slurm side on (the prolog's `banyan job start` turns it on when it starts the agent). */
      enabled: z.boolean().default(false),
      /** The Unix socket `banyan job start|end` speak to (root only). */
      controlSocket: z.string().default("/run/banyan/agent.sock"),
      /** Per-job push tokens and the start lock live here. */
      runDir: z.string().default("/run/banyan"),
      /** Where the epilog's post-mortem reports go (JSON per job and node). */
      reportDir: z.string().default("/var/lib/banyan/jobs"),
      /** Where the cgroup v2 (or v1) hierarchy is mounted: each job's accounting is read there. */
      cgroupRoot: z.string().default("/sys/fs/cgroup"),
      /** The push API (Pushgateway paths); clear of the Pushgateway's own 9091. */
      pushListen: z.string().default("127.0.0.1:7472"),
      /**
       * How often the cgroup tree is looked at for jobs no prolog registered (Slurm skips one now
       * and then) and for jobs whose cgroup is gone with no epilog; 0 turns it off.
       */
      discoverMs: z.number().int().nonnegative().default(2000),
      /** A job whose cgroup has been gone this long without an epilog is ended by the agent. */
      lostEpilogMs: z.number().int().positive().default(60_000),
      /** What the push API takes at most, and whom it hears; unset keys take the defaults (docs/slurm.md). */
      push: pushSchema,
      /**
       * A one-line summary of each job's card written to its AdminComment in Slurm's accounting
       * (`sacctmgr -i update job`, as root: needs slurmdbd), by the job's first node once the roots have
       * its verdict: off unless the site allows it.
       */
      adminComment: z
        .strictObject({
          /** Write it. */
          enabled: z.boolean().default(false),
          /** How long after the job's end to wait for its verdict. */
          waitMs: positiveInt.default(60_000),
        })
        .default({ enabled: false, waitMs: 60_000 }),
    })
    .default({ enabled: false, controlSocket: "/run/banyan/agent.sock", runDir: "/run/banyan", reportDir: "/var/lib/banyan/jobs", cgroupRoot: "/sys/fs/cgroup", pushListen: "127.0.0.1:7472", discoverMs: 2000, lostEpilogMs: 60_000, push: {}, adminComment: { enabled: false, waitMs: 60_000 } }),
  /** Precision per metric name; first match wins, then the documented defaults (gauges 1 %, counters exact, temperatures 0.5 °C…). */
  precision: z.array(precisionRule).default([]),
});

export type AgentConfig = z.infer<typeof agentConfigSchema>;

export function parseAgentConfig(raw: unknown, source: ConfigSource = "agent config"): Readonly<AgentConfig> {
  return parseConfig(agentConfigSchema, raw, source);
}
