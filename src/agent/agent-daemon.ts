import type { Topology } from "../topology/topology-file.js";
import { ServiceList } from "../core/service.js";
import type { DaemonContext } from "../node/daemon-context.js";
import { startNode, type NodeDaemon } from "../node/node-daemon.js";
import type { AgentConfig } from "./agent-config.js";
import { startJobs } from "./agent-jobs.js";
import type { GpuReadings } from "./gpu-readings.js";
import { NodeSource } from "./node-source.js";
import { NvidiaSmiSource } from "./nvidia-smi-source.js";
import { IpmiPowerSource, type RedfishTarget } from "./power/ipmi-source.js";
import { readFileSync } from "node:fs";
import { BanyanError, Code } from "../core/errors.js";
import { ScrapeSource } from "./scrape-source.js";
import { SlurmSource } from "./slurm/slurm-source.js";
import { SlurmNodeSource } from "./slurm/slurm-node-source.js";
import { findScontrol } from "./slurm/scontrol.js";
import type { Source } from "../node/source.js";
import type { Logger } from "../core/logger.js";
import { SyntheticSource } from "./synthetic-source.js";

/**
 * An agent: its services are, with `jobs.enabled`, the Slurm side, then the node of the trees that
 * samples the node's sources (and, when the topology gives it children, relays theirs). Shutdown in
 * reverse: sampling, the children's streams, the uplink's drain, then the Slurm side.
 */
export async function startAgent(ctx: DaemonContext, config: Readonly<AgentConfig>, sources?: readonly Source[]): Promise<NodeDaemon> {
  // Local exporters and nvidia-smi; the GPU-capable ones also tell the jobs how busy their GPUs are.
  const gpuSources: (Source & GpuReadings)[] = config.sources.scrape.map(
    (t) => new ScrapeSource({ url: t.url, job: t.job, intervalMs: t.intervalMs ?? config.intervalMs, timeoutMs: t.timeoutMs ?? Math.max(100, Math.floor(config.intervalMs / 2)) }, ctx.log.child({ node: ctx.name, part: "scrape" })),
  );
  if (config.sources.nvidiaSmi.enabled) gpuSources.push(new NvidiaSmiSource(config.sources.nvidiaSmi.path, config.intervalMs, ctx.log.child({ node: ctx.name, part: "gpu" })));
  const b = config.sources.ipmi;
  const ipmi = b.enabled ? new IpmiPowerSource(b.path, b.intervalMs, b.timeoutMs, ctx.log.child({ node: ctx.name, part: "ipmi" }), b.redfishUrl !== "" ? redfishTarget(b) : null) : null;
  const extra: Source[] = [...gpuSources, ...(ipmi !== null ? [ipmi] : [])];
  if (config.sources.slurm.enabled) extra.push(new SlurmSource(config.sources.slurm, ctx.log.child({ node: ctx.name, part: "slurm" })));
  // On a Slurm node, Slurm's own word on it (partitions, features) for the roots' inventory.
  if (config.jobs.enabled) extra.push(new SlurmNodeSource(ctx.name, config.sources.slurm.binDir !== "" ? `${config.sources.slurm.binDir}/scontrol` : findScontrol(), 60_000, ctx.log.child({ node: ctx.name, part: "slurm-node" })));
  let jobs: Awaited<ReturnType<typeof startJobs>> | null = null;
  let node: NodeDaemon | null = null;
  let drainMs: number | undefined;
  const services = new ServiceList<Topology>(ctx.log);
  if (config.jobs.enabled) services.add({ name: "Slurm side", start: async () => void (jobs = await startJobs(ctx, config, gpuSources, ipmi)), stop: () => jobs?.stop() });
  services.add({
    name: "node",
    async start() {
      node = await startNode(ctx, config, {
        job: config.job ?? (config.source === "procfs" ? "node" : "synthetic"),
        keyframeIntervalMs: config.keyframeIntervalMs,
        ...(config.startSpreadMs !== undefined ? { startSpreadMs: config.startSpreadMs } : {}),
        precision: config.precision,
        sources: [...(sources ?? [defaultSource(ctx.name, config, ctx.log.child({ node: ctx.name, part: "collectors" }))]), ...extra, ...(jobs?.sources ?? [])],
      });
    },
    reload: (topology) => node?.reload(topology),
    stop: () => node?.stop(drainMs),
  });
  await services.start();
  // Set by the node's start (TypeScript cannot see a closure assign it).
  const started = node as NodeDaemon | null;
  if (started === null) throw new Error("the agent's node did not start");
  return {
    ...started,
    reload: (topology) => services.reload(topology),
    stop(drain?: number) {
      drainMs = drain;
      return services.stop();
    },
  };
}

export function defaultSource(name: string, config: Readonly<AgentConfig>, log?: Logger): Source {
  return config.source === "synthetic"
    ? new SyntheticSource({ ...config.synthetic, node: name })
    : new NodeSource(
        { proc: config.procfs.path, sys: config.procfs.sys, rootfs: config.procfs.rootfs, mountPointsExclude: config.procfs.mountPointsExclude, fsTypesExclude: config.procfs.fsTypesExclude, netdevExclude: config.procfs.netdevExclude, textfileDirectory: config.procfs.textfileDirectory },
        config.procfs.disable,
        log,
      );
}

/** The Redfish target of `sources.ipmi`, its files read now (a missing one is a config error at start). */
function redfishTarget(b: Readonly<AgentConfig>["sources"]["ipmi"]): RedfishTarget {
  const file = (path: string | undefined, key: string): Buffer | null => {
    if (path === undefined) return null;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new BanyanError(Code.InvalidConfig, `sources.ipmi.${key}: ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}: expected a readable file`);
    }
  };
  const credentials = file(b.redfishCredentialsFile, "redfishCredentialsFile")?.toString("utf8").split("\n")[0]?.trim() ?? null;
  return { url: b.redfishUrl, credentials, ca: file(b.redfishCaFile, "redfishCaFile"), insecureSkipVerify: b.redfishInsecureSkipVerify };
}
