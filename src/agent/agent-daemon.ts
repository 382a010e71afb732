import type { DaemonContext } from "../node/daemon-context.js";
import { startNode, type NodeDaemon } from "../node/node-daemon.js";
import type { AgentConfig } from "./agent-config.js";
import { startJobs } from "./agent-jobs.js";
import type { GpuReadings } from "./gpu-readings.js";
import { NodeSource } from "./node-source.js";
import { NvidiaSmiSource } from "./nvidia-smi-source.js";
import { ScrapeSource } from "./scrape-source.js";
import { SlurmSource } from "./slurm/slurm-source.js";
import { SlurmNodeSource } from "./slurm/slurm-node-source.js";
import { findScontrol } from "./slurm/job-discovery.js";
import type { Source } from "../node/source.js";
import { SyntheticSource } from "./synthetic-source.js";

/**
 * An agent: the node's sources sampled by its node of the trees (which, when the topology gives it
 * children, relays theirs too); with `jobs.enabled`, the Slurm side.
 * Shutdown: sampling, the children's streams, the uplink's drain, then the Slurm side.
 */
export async function startAgent(ctx: DaemonContext, config: Readonly<AgentConfig>, sources?: readonly Source[]): Promise<NodeDaemon> {
  // Local exporters and nvidia-smi; the GPU-capable ones also tell the jobs how busy their GPUs are.
  const gpuSources: (Source & GpuReadings)[] = config.sources.scrape.map(
    (t) => new ScrapeSource({ url: t.url, job: t.job, intervalMs: t.intervalMs ?? config.intervalMs, timeoutMs: t.timeoutMs ?? Math.max(100, Math.floor(config.intervalMs / 2)) }, ctx.log.child({ node: ctx.name, part: "scrape" })),
  );
  if (config.sources.nvidiaSmi.enabled) gpuSources.push(new NvidiaSmiSource(config.sources.nvidiaSmi.path, config.intervalMs, ctx.log.child({ node: ctx.name, part: "gpu" })));
  const jobs = config.jobs.enabled ? await startJobs(ctx, config, gpuSources) : null;
  const extra: Source[] = [...gpuSources];
  if (config.sources.slurm.enabled) extra.push(new SlurmSource(config.sources.slurm, ctx.log.child({ node: ctx.name, part: "slurm" })));
  // On a Slurm node, Slurm's own word on it (partitions, features) for the roots' inventory.
  if (config.jobs.enabled) extra.push(new SlurmNodeSource(ctx.name, config.sources.slurm.binDir !== "" ? `${config.sources.slurm.binDir}/scontrol` : findScontrol(), 60_000, ctx.log.child({ node: ctx.name, part: "slurm-node" })));
  const node = await startNode(ctx, config, {
    job: config.job ?? (config.source === "procfs" ? "node" : "synthetic"),
    keyframeIntervalMs: config.keyframeIntervalMs,
    ...(config.startSpreadMs !== undefined ? { startSpreadMs: config.startSpreadMs } : {}),
    precision: config.precision,
    sources: [...(sources ?? [defaultSource(ctx.name, config)]), ...extra, ...(jobs?.sources ?? [])],
  });
  if (jobs === null) return node;
  return {
    ...node,
    async stop(drainMs?: number) {
      await node.stop(drainMs);
      await jobs.stop();
    },
  };
}

export function defaultSource(name: string, config: Readonly<AgentConfig>): Source {
  return config.source === "synthetic"
    ? new SyntheticSource({ ...config.synthetic, node: name })
    : new NodeSource(
        { proc: config.procfs.path, sys: config.procfs.sys, rootfs: config.procfs.rootfs, mountPointsExclude: config.procfs.mountPointsExclude, fsTypesExclude: config.procfs.fsTypesExclude, netdevExclude: config.procfs.netdevExclude, textfileDirectory: config.procfs.textfileDirectory },
        config.procfs.disable,
      );
}
