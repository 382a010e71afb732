import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { Command, Option } from "commander";
import { readTopologyFile } from "../topology/topology-file.js";
import { z } from "zod";
import { applyOverrides, parseConfig, readYamlFile, type ConfigSource } from "../core/config-file.js";
import { BanyanError, Code } from "../core/errors.js";
import { createLogger, type Logger } from "../core/logger.js";
import { AGENT_NODE_FLAGS } from "../agent/node-flags.js";
import { exitOnError } from "./cli-errors.js";
import type { DaemonContext } from "../node/daemon-context.js";
import { logSchema } from "../wire/wire-config.js";
import { routeGrpcLogs } from "../wire/uplink-grpc.js";
import { subcommand } from "./subcommand.js";

interface DaemonFlags {
  topology?: string;
  name?: string;
  config?: string;
  set: string[];
  http?: string;
  source?: string;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** The config file and why it is that one: --config, else $BANYAN_CONFIG, else /etc/banyan/<daemon>.yaml when it exists. */
function configPath(flags: DaemonFlags, daemon: string): { path: string | null; why: string } {
  if (flags.config !== undefined) return { path: flags.config, why: "--config" };
  const env = process.env["BANYAN_CONFIG"];
  if (env !== undefined && env !== "") return { path: env, why: "$BANYAN_CONFIG" };
  const etc = `/etc/banyan/${daemon}.yaml`;
  return existsSync(etc) ? { path: etc, why: "the default path (no --config, no $BANYAN_CONFIG)" } : { path: null, why: `no --config, no $BANYAN_CONFIG, no ${etc}` };
}

/** Raw config: the file, then the named flags, then every --set; parsed by the daemon's schema. */
function rawConfig(flags: DaemonFlags, daemon: string): { raw: Record<string, unknown>; source: ConfigSource; path: string | null; why: string } {
  const { path, why } = configPath(flags, daemon);
  const fromFile = path === null ? {} : readYamlFile(path);
  const named: string[] = [];
  if (flags.topology !== undefined) named.push(`topology=${JSON.stringify(flags.topology)}`);
  if (flags.name !== undefined) named.push(`name=${JSON.stringify(flags.name)}`);
  if (flags.http !== undefined) named.push(`http=${JSON.stringify(flags.http)}`);
  if (flags.source !== undefined) named.push(`source=${JSON.stringify(flags.source)}`);
  const sets = [...named, ...flags.set];
  return { raw: applyOverrides(fromFile, sets), source: { file: path, flags: sets.map((s) => s.slice(0, Math.max(0, s.indexOf("=")))) }, path, why };
}

function contextOf(cfg: { topology?: string | undefined; name?: string | undefined }, log: Logger, daemon: string): DaemonContext {
  if (cfg.topology === undefined) throw new BanyanError(Code.InvalidArgument, `${daemon}: no topology: give --topology <file> or topology: in the config`);
  const slurm = process.env["SLURMD_NODENAME"];
  const name = cfg.name ?? slurm ?? hostname().split(".")[0]!;
  const topology = readTopologyFile(cfg.topology);
  if (cfg.name === undefined && !topology.nodes.has(name) && !topology.roots.some((r) => r.name === name)) {
    const from = slurm !== undefined ? "$SLURMD_NODENAME" : "this host's short name";
    throw new BanyanError(Code.NotFound, `${cfg.topology}: ${daemon} "${name}" (the name comes from ${from}) is not in the topology: give its name with --name <name> or name: in the config`);
  }
  if (daemon === "agent" && topology.nodes.get(name)?.relay === true) {
    throw new BanyanError(Code.InvalidArgument, `${cfg.topology}: ${name} is a dedicated relay: run \`banyan relay --name ${name}\` there`);
  }
  return { topology, topologySource: cfg.topology, name, log };
}

/** Runs a daemon until SIGTERM/SIGINT (drain, exit 0); SIGHUP reloads config and topology. */
async function runDaemon(
  daemon: string,
  flags: DaemonFlags,
  start: (raw: Record<string, unknown>, source: ConfigSource, log: Logger) => Promise<{ stop(): Promise<void>; reload(raw: Record<string, unknown>, source: ConfigSource): void }>,
): Promise<void> {
  const { raw, source, path, why } = rawConfig(flags, daemon);
  // The level first, checked like any config field: the logger exists before the daemon's schema runs.
  const level = parseConfig(z.looseObject({ log: logSchema }), raw, source).log.level;
  const log = createLogger({ name: `banyan-${daemon}`, level });
  routeGrpcLogs(log);
  // Which file, and why that one: a daemon that picked up a host's /etc/banyan by default says so.
  log.info({ config: path, why }, path !== null ? `config: ${path} (from ${why})` : `config: none (${why}): flags only`);
  const running = await start(raw, source, log);
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${daemon} stopping`);
    running.stop().then(
      () => {
        log.info(`${daemon} stopped`);
        log.flush?.();
        setTimeout(() => process.exit(0), 50).unref();
      },
      (err: unknown) => {
        log.error({ err: (err as Error).message }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  // Started by a program that holds an IPC channel to it (the bench): when that program is gone,
  // however it died, so is the reason to run — no orphan keeps its ports.
  if (process.channel !== undefined) process.once("disconnect", () => shutdown("parent process gone"));
  process.on("SIGHUP", () => {
    try {
      const again = rawConfig(flags, daemon);
      running.reload(again.raw, again.source);
    } catch (err) {
      log.error({ err: (err as Error).message }, "reload refused: the running config stays");
    }
  });
}

const daemonOptions = (cmd: Command): Command =>
  cmd
    .option("--topology <file>", "topology JSON (from `banyan topology generate`)")
    .option("--name <name>", "this daemon's name in the topology (agents default to $SLURMD_NODENAME, then the short host name)")
    .option("--config <yaml>", "YAML config file (default: $BANYAN_CONFIG, else /etc/banyan/<daemon>.yaml when present; /dev/null: none, flags only). The daemon logs at start which file it read and why")
    .option("--set <key=value>", "override any config field, e.g. --set intervalMs=500 --set log.level=debug (repeatable)", collect, []);

export function rootCommand(): Command {
  return daemonOptions(subcommand("root").description("run a root: terminates its trees and serves them to Prometheus at /metrics"))
    .option("--http <host:port>", "HTTP address for /metrics (default: the topology's)")
    .addHelpText(
      "after",
      `
The root listens for its trees on the topology's gRPC address and serves /metrics, /-/healthy and
/-/ready on its HTTP address. Every series carries instance="<node>" and its job: scrape the roots
with honor_labels: true (banyan topology render --format prometheus prints the config).

Config keys (YAML, or --set): topology, name, listen, http, intervalMs, deadAfterMs, forgetAfterMs,
resyncIntervalMs, keyframeIntervalMs, resyncPerS, resyncBurst, exposeRaw, gzipLevel, memoryBudgetBytes,
aggregates: [{record, expr: sum|avg|min|max|count, metric, by: [labels]}], ${LIMITS_KEYS}, ${TREE_KEYS},
web.{maxConnections,maxConcurrentRequests,sendTimeoutMs,idleTimeoutMs,maxConnectionsPerAddress,headersTimeoutMs,
maxPendingConnections,configFile} (configFile: Prometheus' web
config, tls_server_config and basic_auth_users), log.level,
events: {alertmanagers: [{url, timeoutMs, match: {label: regex}}], webhooks: [{url, secretFile, types, match, maxQueue,
maxBatch, timeoutMs}], jobLog, stragglers: {metrics, belowMedian, windowMs, minNodes}, nodeLabels: [{nodes: hostlist, labels}], resendMs, treeDegradedBelow, resyncStormAbove,
keep, startupMs}
(node, tree and job events: /api/v1/events, /api/v1/events/stream, banyan_events_total, Alertmanager),
jobs: {rules: [{name, metric, condition: <|<=|>|>=, threshold, minDurationS, partitions, endedOnly, message,
severity}], score: {cpu, gpu, memory, time}, reportsKept, verdictDelayMs, peerTimeoutMs,
carbonIntensityGramsPerKwh, carbonIntensitySeries, actions: {rules: [{name, metric, below, forS, action:
notify|cancel, partitions, minJobAgeS, dryRun, message}], sendmail, mailDomain, scancel, scontrol, auditLog,
everyMs}} (report cards:
/api/v1/jobs/<id>/report, banyan job report, job_verdict; actions: job_action),
remoteWrite: [{url, protocol: 1.0|2.0|auto, compression: snappy|zstd, headers, basicAuth: {username, password |
passwordFile}, bearerTokenFile, tls: {caFile, certFile, keyFile, serverName, insecureSkipVerify},
sigv4: {region, accessKey, secretKey, profile, service},
queue: {maxSamplesPerSend, batchDeadlineMs, concurrency, maxBytes, dir, minBackoffMs,
maxBackoffMs, timeoutMs}, refreshMs, externalLabels, match: [{name, labels}], drop: [{name, labels}],
rootSeriesIntervalMs, metadataIntervalMs, maxAgeMs, maxFutureMs}] (Prometheus remote_write: every applied
change, a refresh of every series each refreshMs, staleness markers for nodes that go down, the root's own
series (banyan_node_up, last seen, aggregates, banyan_root_*) every rootSeriesIntervalMs (15 s; 0 never); samples timed outside
[now - maxAgeMs (1 h), now + maxFutureMs (5 min)] on the root's clock are counted, not written: 0 no bound),
central: {topology, name, forward: {series: raw|aggregates|none, allow: [selector], deny: [selector], events},
flushMs, maxQueuedFrames, ackTimeoutMs, healAfterMs, tls: {caFile, certFile, keyFile}} (this root uplinks into a
central Banyan made by banyan topology central; its series arrive there as cluster="<cluster>"),
clusters: {maxSeries, maxOrigins, maxBytesPerS, overrides: {<cluster>: {maxSeries, maxOrigins, maxBytesPerS}}}
(at a central root: what each cluster may cost it),
watch: {grpcListen, maxWatchers, maxSeriesPerWatch, maxPendingBytes} (the watch API: /api/v1/watch,
/api/v1/query, gRPC banyan.v1.Watch on grpcListen; also /api/v1/inventory, /api/v1/partitions/<p>/nodes).

Example:
  banyan root --topology topology.json --name svc1 --http 0.0.0.0:7471`,
    )
    .action((flags: DaemonFlags) =>
      runDaemon("root", flags, async (raw, source, log) => {
        // Each daemon loads only its own modules: an agent never holds the root's (memory on every node).
        const { parseRootConfig } = await import("../root/root-config.js");
        const { startRoot } = await import("../root/root-daemon.js");
        const cfg = parseRootConfig(raw, source);
        const ctx = contextOf(cfg, log, "root");
        const d = await startRoot(ctx, cfg);
        return {
          stop: () => d.stop(),
          reload: (r, s) => {
            const next = parseRootConfig(r, s);
            d.reload(next, readTopologyFile(contextOf(next, log, "root").topologySource));
          },
        };
      }).catch(exitOnError),
    );
}

export function agentCommand(): Command {
  return daemonOptions(subcommand("agent").description("run a node's agent: samples the node and relays its children's frames"))
    .addOption(new Option("--source <source>", "where metrics come from (default procfs: this node's /proc)").choices(["procfs", "synthetic"]))
    .addHelpText(
      "after",
      `
Config keys (YAML, or --set): topology, name, source, intervalMs, keyframeIntervalMs, startSpreadMs, flushMs,
cpuAffinity (a CPU list: the agent's threads run there), nice, schedPolicy (other|batch|idle),
maxQueuedFrames, ackTimeoutMs, healAfterMs, job, procfs.{path,sys,rootfs,disable,mountPointsExclude,
fsTypesExclude,netdevExclude,textfileDirectory}, sources.scrape: [{url, job, intervalMs, timeoutMs}],
sources.nvidiaSmi.{enabled,path}, sources.ipmi.{enabled,path,intervalMs,timeoutMs,redfishUrl,
redfishCredentialsFile,redfishCaFile,redfishInsecureSkipVerify},
sources.slurm.{enabled,intervalMs,timeoutMs,binDir,slurmctldUrl},
synthetic.{series,changeRate,seed},
jobs.{enabled,controlSocket,runDir,reportDir,cgroupRoot,pushListen,discoverMs,lostEpilogMs},
jobs.adminComment.{enabled,waitMs},
jobs.push.{maxBodyBytes,maxSeriesPerGroup,maxGroups,maxSeries,requireToken,nodeTokenFile,nodeTokenGroup,
maxConnections,maxConcurrentRequests,sendTimeoutMs,idleTimeoutMs,maxConnectionsPerAddress,headersTimeoutMs,maxPendingConnections,
webConfigFile},
precision: [{match: "app_*", relative: 0.05, absolute: 0}], listen, ${LIMITS_KEYS},
${TREE_KEYS}, log.level.

The package's launcher (/usr/bin/banyan, the tarball's bin/banyan) and \`banyan job start\` run the agent's
node with ${AGENT_NODE_FLAGS.join(" ")} (one GC thread: no helper threads waking on the job's cores); started as
\`node .../dist/src/cli/main.js agent\`, pass it to node yourself.

Examples:
  banyan agent --topology /etc/banyan/topology.json
  banyan agent --topology local.json --name n07 --source synthetic --set synthetic.series=500`,
    )
    .action((flags: DaemonFlags) =>
      runDaemon("agent", flags, async (raw, source, log) => {
        const { parseAgentConfig } = await import("../agent/agent-config.js");
        const { startAgent } = await import("../agent/agent-daemon.js");
        const cfg = parseAgentConfig(raw, source);
        const d = await startAgent(contextOf(cfg, log, "agent"), cfg);
        if (cfg.cpuAffinity !== undefined || cfg.nice !== undefined || cfg.schedPolicy !== "other") {
          // Process-wide, so here and not in startAgent (tests run many agents in one process).
          const { applyScheduling } = await import("../agent/scheduling.js");
          for (const problem of await applyScheduling(cfg)) log.warn(problem);
        }
        return {
          stop: () => d.stop(),
          reload: (r, s) => d.reload(contextOf(parseAgentConfig(r, s), log, "agent").topology),
        };
      }).catch(exitOnError),
    );
}

/** The tree port's bounds every daemon with children takes (src/wire/connection-gate.ts, child-server.ts). */
const TREE_KEYS = "tree.{maxConnections,maxConnectionsPerAddress,handshakeTimeoutMs,maxStreamsPerConnection,maxOriginsPerLink},\ntree.tls.{caFile,certFile,keyFile} (mutual TLS on the trees: banyan certs makes them)";
/** The wire limits every daemon takes (src/wire/wire-limits.ts). */
const LIMITS_KEYS = "limits.{maxMessageBytes,maxFramesPerBatch,maxDecompressedBytes,maxNameLength,maxSeriesPerOrigin,maxLabels,maxStringLength,maxStrings,maxStringChars}";

export function relayCommand(): Command {
  return daemonOptions(subcommand("relay").description("run a dedicated relay: forwards its children's frames, samples nothing"))
    .addHelpText(
      "after",
      `
Config keys (YAML, or --set): topology, name, listen, intervalMs, flushMs, maxQueuedFrames, ackTimeoutMs,
healAfterMs, ${LIMITS_KEYS},
${TREE_KEYS}, log.level.

Example:
  banyan relay --topology topology.json --name relay01`,
    )
    .action((flags: DaemonFlags) =>
      runDaemon("relay", flags, async (raw, source, log) => {
        const { parseRelayConfig } = await import("../relay/relay-config.js");
        const { startRelay } = await import("../relay/relay-daemon.js");
        const cfg = parseRelayConfig(raw, source);
        const d = await startRelay(contextOf(cfg, log, "relay"), cfg);
        return {
          stop: () => d.stop(),
          reload: (r, s) => d.reload(contextOf(parseRelayConfig(r, s), log, "relay").topology),
        };
      }).catch(exitOnError),
    );
}
