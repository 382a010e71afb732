import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { Logger } from "../../core/logger.js";
import { LimitedWarning } from "../../core/logger.js";
import { SeriesType } from "../../series/series-def.js";
import { SeriesWriter } from "../collectors/series-writer.js";
import { BackgroundPoll } from "../background-poll.js";
import type { SampleTarget, Source } from "../../node/source.js";

const run = promisify(execFile);

/** What Slurm says of this node (`scontrol show node -o <name>`), as the labels of banyan_node_slurm_info. */
export interface SlurmNodeFacts {
  readonly partitions: string;
  readonly features: string;
  readonly state: string;
  readonly gres: string;
  readonly cpus: string;
  readonly real_memory_mb: string;
}

/** The facts of one line of `scontrol show node -o` (`Key=Value` words); null when it is not that node's. */
export function parseScontrolNode(text: string, node: string): SlurmNodeFacts | null {
  const field = (k: string): string => {
    const v = new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(text)?.[1];
    return v === undefined || v === "(null)" ? "" : v;
  };
  if (field("NodeName") !== node) return null;
  return {
    partitions: field("Partitions"),
    // AvailableFeatures since Slurm 17.11; Features before it.
    features: field("AvailableFeatures") || field("Features"),
    state: field("State").toLowerCase(),
    gres: field("Gres"),
    cpus: field("CPUTot"),
    real_memory_mb: field("RealMemory"),
  };
}

/**
 * This node as Slurm sees it (partitions, features, state, GRES, CPUs, memory): asked of scontrol
 * every `intervalMs` (60 s: it changes when an admin acts) in the background, never on the sampling
 * path, and served as `banyan_node_slurm_info{…} 1` for the root's inventory, and
 * `banyan_node_partition_info{partition} 1` per partition for dashboards' joins. Nothing when Slurm
 * cannot be asked (a line a minute at most says so).
 */
export class SlurmNodeSource implements Source {
  readonly name = "slurm-node";
  private facts: SlurmNodeFacts | null = null;
  /** The facts' partitions, split once per poll. */
  private partitions: string[] = [];
  private readonly poller: BackgroundPoll;
  private writer: SeriesWriter | null = null;
  private readonly failed: LimitedWarning;

  constructor(
    private readonly node: string,
    private readonly scontrol: string,
    intervalMs: number,
    log: Logger,
  ) {
    this.failed = new LimitedWarning(log, "scontrol show node failed: no banyan_node_slurm_info", 60_000);
    this.poller = new BackgroundPoll(() => this.pollOnce(), intervalMs);
  }

  async pollOnce(): Promise<void> {
    try {
      const { stdout } = await run(this.scontrol, ["show", "node", "-o", this.node], { timeout: 5000, maxBuffer: 1024 * 1024 });
      this.facts = parseScontrolNode(stdout, this.node);
      this.partitions = (this.facts?.partitions ?? "").split(",").filter((x) => x !== "");
    } catch (err) {
      this.facts = null;
      this.failed.warn({ err: (err as Error).message.split("\n")[0] });
    }
  }

  collect(target: SampleTarget): void {
    this.poller.ensure();
    this.writer ??= new SeriesWriter(target);
    const w = this.writer;
    w.begin();
    if (this.facts !== null) {
      w.put("banyan_node_slurm_info", { ...this.facts }, 1, SeriesType.Gauge, "This node as Slurm sees it: partitions, features, state, GRES, CPUs, memory (MB).");
      // One series per partition, to join on in PromQL (a comma list in one label cannot be split there).
      for (const partition of this.partitions) w.put("banyan_node_partition_info", { partition }, 1, SeriesType.Gauge, "A Slurm partition this node is in.");
    }
    w.end();
  }

  close(): void {
    this.poller.close();
  }
}
