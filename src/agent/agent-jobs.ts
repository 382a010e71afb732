import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentConfig } from "./agent-config.js";
import type { GpuReadings } from "./gpu-readings.js";
import { DEFAULT_PUSH_POLICY, PushServer } from "./push-server.js";
import { ControlServer } from "./slurm/control-server.js";
import { JobDiscovery } from "./slurm/job-discovery.js";
import { findScontrol, scontrolFacts, slurmCommand } from "./slurm/scontrol.js";
import { JobManager } from "./slurm/job-manager.js";
import { AdminComments } from "./slurm/admin-comment.js";
import type { RunningJob } from "./slurm/job-cgroups.js";
import { firstHost } from "../topology/hostlist.js";
import { JobRegistry } from "./slurm/job-registry.js";
import { JobSource } from "./slurm/job-source.js";
import { JobEnergy, busyCpuSeconds, type NodeEnergy } from "./slurm/job-energy.js";
import type { IpmiPowerSource } from "./power/ipmi-source.js";
import { cpuAndDramJoules, raplZones, type RaplZone } from "./power/rapl.js";
import type { Source } from "../node/source.js";
import type { DaemonContext } from "../node/daemon-context.js";
import { resolveLimits } from "../wire/wire-config.js";
import { resolveHttpBounds } from "../core/http-bounds.js";
import { NodePushToken } from "./node-push-token.js";
import { readWebConfig } from "../core/web-config.js";


/** The Slurm side of an agent: job registry and cgroup accounting, control socket, push API. */
export async function startJobs(ctx: DaemonContext, config: Readonly<AgentConfig>, gpus: readonly GpuReadings[], bmc: IpmiPowerSource | null = null): Promise<{ sources: Source[]; stop(): Promise<void> }> {
  const log = ctx.log.child({ node: ctx.name, part: "jobs" });
  const registry = new JobRegistry(ctx.name, config.jobs.cgroupRoot, gpus, (job, cgroupRoot) =>
    log.warn(
      { job: job.jobId, cgroupRoot, looked: [job.cgroupPath ?? `${cgroupRoot}/system.slice/slurmstepd.scope/job_${job.jobId}`, ...(job.cgroupPath === undefined && job.sluid !== undefined ? [`${cgroupRoot}/system.slice/slurmstepd.scope/${job.sluid}`] : []), `${cgroupRoot}/cpuacct/slurm[_${ctx.name}]/uid_${job.uid}/job_${job.jobId}`] },
      `job ${job.jobId}: no cgroup found: its CPU, memory and I/O are unknown (reported as null, never 0); check jobs.cgroupRoot and Slurm's cgroup plugins (ProctrackType=proctrack/cgroup, TaskPlugin=task/cgroup)`,
    ),
  );
  const ended: ((jobId: string, job: RunningJob | undefined) => void)[] = [];
  const energy = jobEnergy(config, registry, bmc);
  registry.energyOf = (jobId) => energy.share.of(jobId);
  const manager = new JobManager(registry, config.jobs.runDir, config.jobs.reportDir, log, (jobId, job) => ended.forEach((f) => f(jobId, job)), scontrolFacts(findScontrol()));
  const p = config.jobs.push;
  const nodeToken = p.requireToken === true ? new NodePushToken(p.nodeTokenFile ?? join(config.jobs.runDir, "push.token"), p.nodeTokenGroup) : null;
  const auth = { jobOfToken: (t: string) => manager.jobOfToken(t), jobLabels: (id: string) => manager.jobLabels(id), isNodeToken: (t: string) => nodeToken?.matches(t) === true };
  const d = DEFAULT_PUSH_POLICY;
  const push = new PushServer(config.jobs.pushListen, auth, log, {
    http: resolveHttpBounds(p, d.http),
    maxBodyBytes: p.maxBodyBytes ?? d.maxBodyBytes,
    maxSeriesPerGroup: p.maxSeriesPerGroup ?? d.maxSeriesPerGroup,
    maxGroups: p.maxGroups ?? d.maxGroups,
    maxSeries: p.maxSeries ?? d.maxSeries,
    requireToken: p.requireToken === true,
    reservedJobs: [config.job ?? (config.source === "procfs" ? "node" : "synthetic"), "relay", ...config.sources.scrape.map((t) => t.job)],
    limits: resolveLimits(config.limits),
    web: p.webConfigFile !== undefined ? readWebConfig(p.webConfigFile, "jobs.push.webConfigFile") : null,
  });
  ended.push((jobId) => push.endJob(jobId));
  if (config.jobs.adminComment.enabled) {
    // One write a job: by its first node (or by each node of a job whose nodes Slurm did not say).
    const comments = new AdminComments(() => ctx.topology.roots.map((r) => r.http), slurmCommand(findScontrol(), "sacctmgr"), config.jobs.adminComment.waitMs, log);
    ended.push((jobId, job) => {
      if (job?.nodelist === undefined || firstHost(job.nodelist) === ctx.name) comments.ended(jobId);
    });
  }
  const control = new ControlServer(config.jobs.controlSocket, manager, log);
  await control.listen();
  // Who runs here, for operators and for stopping it by PID (an agent the prolog started is detached).
  mkdirSync(config.jobs.runDir, { recursive: true });
  writeFileSync(join(config.jobs.runDir, "agent.pid"), `${process.pid}\n`);
  // The jobs an earlier agent process registered, then the prologs and epilogs that ran while this
  // one was starting (their requests wait in the spool).
  manager.restore();
  const spool = join(config.jobs.runDir, "spool");
  await control.drainSpool(spool);
  const spoolTimer = setInterval(() => void control.drainSpool(spool), 1000);
  spoolTimer.unref();
  // Jobs Slurm ran no prolog or epilog for, found in the cgroup tree.
  const discovery = new JobDiscovery(manager, config.jobs, log);
  const discover = (): Promise<void> => discovery.scan().catch((err: Error) => log.warn({ err: err.message }, "looking for jobs in the cgroup tree failed"));
  const discoverTimer = config.jobs.discoverMs > 0 ? setInterval(() => void discover(), config.jobs.discoverMs) : null;
  discoverTimer?.unref();
  const pushPort = await push.listen();
  log.info({ controlSocket: config.jobs.controlSocket, pushPort }, `jobs: control socket ${config.jobs.controlSocket}, push API on port ${pushPort}`);
  return {
    sources: [new JobSource(registry, energy), push],
    async stop() {
      clearInterval(spoolTimer);
      if (discoverTimer) clearInterval(discoverTimer);
      await control.stop();
      await push.stop();
    },
  };
}

/**
 * What the node measures of its energy, for its jobs' shares: RAPL's package and DRAM zones (found
 * once), the GPUs' energy from their source, the BMC's power, /proc/stat's busy time. Read only on a
 * tick where a job runs.
 */
function jobEnergy(config: Readonly<AgentConfig>, registry: JobRegistry, bmc: IpmiPowerSource | null): { meter: (gpus: readonly string[]) => NodeEnergy; share: JobEnergy } {
  let zones: RaplZone[] | null = null;
  return {
    share: new JobEnergy(),
    meter(gpus) {
      zones ??= raplZones(config.procfs.sys);
      const gpu = new Map<string, number>();
      for (const g of gpus) {
        const j = registry.gpuEnergy(g);
        if (j !== null) gpu.set(g, j);
      }
      return { ...cpuAndDramJoules(zones), gpus: gpu, nodeWatts: bmc?.powerWatts() ?? null, busyCpuSeconds: busyCpuSeconds(config.procfs.path) };
    },
  };
}
