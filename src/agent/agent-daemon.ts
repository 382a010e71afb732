import type { Registry } from "prom-client";
import type { DaemonContext } from "../wire/daemon-context.js";
import type { RelayNode } from "../wire/relay-node.js";
import { startTreeNode, type NodeDaemon } from "../wire/tree-node.js";
import { samplingBranch } from "../../topology/topology-lookup.js";
import { defaultStartSpreadMs } from "../series/keyframe-schedule.js";
import type { AgentConfig } from "./agent-config.js";
import { startJobs } from "./agent-jobs.js";
import type { GpuReadings } from "./gpu-readings.js";
import { NodeSource } from "./node-source.js";
import { NodeStatusSource } from "../wire/node-status-source.js";
import { NvidiaSmiSource } from "./nvidia-smi-source.js";
import { Sampler } from "../wire/sampler.js";
import { ScrapeSource } from "./scrape-source.js";
import { SlurmSource } from "./slurm/slurm-source.js";
import { SlurmNodeSource } from "./slurm/slurm-node-source.js";
import { findScontrol } from "./slurm/job-discovery.js";
import type { Source } from "../wire/source.js";
import { resolveLimits } from "../wire/wire-config.js";
import { SyntheticSource } from "./synthetic-source.js";

/**
 * An agent: the node's sources feeding a Sampler, which feeds the node's place in the trees (and,
 * when the topology gives it children, their frames too); with `jobs.enabled`, the Slurm side.
 * Shutdown: sampling, the children's streams, the uplink's drain, then the Slurm side.
 */
/** An agent: samples this node and, when the topology gives it children, relays theirs. */
export async function startAgent(ctx: DaemonContext, config: Readonly<AgentConfig>, sources?: readonly Source[]): Promise<NodeDaemon<Sampler>> {
  // Local exporters and nvidia-smi; the GPU-capable ones also tell the jobs how busy their GPUs are.
  const gpuSources: (Source & GpuReadings)[] = config.sources.scrape.map(
    (t) => new ScrapeSource({ url: t.url, job: t.job, intervalMs: t.intervalMs ?? config.intervalMs, timeoutMs: t.timeoutMs ?? Math.max(100, Math.floor(config.intervalMs / 2)) }, ctx.log.child({ node: ctx.name, part: "scrape" })),
  );
  if (config.sources.nvidiaSmi.enabled) gpuSources.push(new NvidiaSmiSource(config.sources.nvidiaSmi.path, config.intervalMs, ctx.log.child({ node: ctx.name, part: "gpu" })));
  const jobs = config.jobs.enabled ? await startJobs(ctx, config, gpuSources) : null;
  const node = await startTreeNode(ctx, config, (relay: RelayNode, registry: Registry) => {
    let sampler: Sampler | null = null;
    const status = NodeStatusSource.of(relay, () => sampler?.lastTickSeconds);
    const extra: Source[] = [...gpuSources];
    if (config.sources.slurm.enabled) extra.push(new SlurmSource(config.sources.slurm, ctx.log.child({ node: ctx.name, part: "slurm" })));
    // On a Slurm node, Slurm's own word on it (partitions, features) for the roots' inventory.
    if (config.jobs.enabled) extra.push(new SlurmNodeSource(ctx.name, config.sources.slurm.binDir !== "" ? `${config.sources.slurm.binDir}/scontrol` : findScontrol(), 60_000, ctx.log.child({ node: ctx.name, part: "slurm-node" })));
    const src = [...(sources ?? [defaultSource(ctx.name, config)]), ...extra, ...(jobs?.sources ?? []), status];
    sampler = new Sampler(
      {
        origin: ctx.name,
        intervalMs: config.intervalMs,
        keyframeIntervalMs: config.keyframeIntervalMs,
        startSpreadMs: config.startSpreadMs ?? defaultStartSpreadMs(ctx.topology.nodes.size, config.keyframeIntervalMs),
        job: config.job ?? (config.source === "procfs" ? "node" : "synthetic"),
        precision: config.precision,
        limits: resolveLimits(config.limits),
        phaseOf: samplingBranch(ctx.topology, ctx.name),
      },
      src,
      relay,
      ctx.log.child({ node: ctx.name, part: "sampler" }),
      registry,
      () => relay.localTick(),
    );
    return sampler;
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
