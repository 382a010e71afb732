import { existsSync } from "node:fs";
import { Command } from "commander";
import { BanyanError, Code } from "../core/errors.js";
import { readTopologyFile } from "../topology/topology-file.js";
import type { JobCard } from "../root/fleet/job-card.js";
import { formatJobCard } from "../root/fleet/job-card-text.js";
import { exitOnError, intOption } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";
import { whyUnreachable } from "./topology-status.js";

const DEFAULT_TOPOLOGY = "/etc/banyan/topology.json";

/** `banyan job report <id>`: a job's report card from the roots, as a table or JSON. */
export function jobReportCommand(): Command {
  return subcommand("report")
    .description("a job's report card: what it asked for beside what it used, its score and the site's notes")
    .argument("<job-id>", "the Slurm job id")
    .option("--root <host:port>", "a root's HTTP address (repeatable; default: every root of --topology)", (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option("--topology <file>", `the topology, for its roots' addresses (default: $BANYAN_TOPOLOGY, else ${DEFAULT_TOPOLOGY})`)
    .option("--json", "print the card as JSON")
    .option("--timeout-ms <ms>", "how long to wait for each root", intOption(1, 600_000), 10_000)
    .addHelpText(
      "after",
      `
A root asks the other roots for their part of the job (its nodes are spread over the trees), so
one root that answers is enough: they are tried in order. The card of an ended job is kept at the
root of its first node (jobs.reportsKept in the root's config); a running job's is made on the spot.
Exits 0 with the card, 1 when no root knows the job or none answered, 2 on a usage error.

Examples:
  banyan job report 4242
  banyan job report 4242 --root head1:9464 --json`,
    )
    .action(async (jobId: string, flags: { root: string[]; topology?: string; json?: boolean; timeoutMs: number }) => {
      try {
        if (!/^\d+(_\d+)?$/.test(jobId)) throw new BanyanError(Code.InvalidArgument, `job id "${jobId}": expected a Slurm job id (digits, or <array>_<task>)`);
        const roots = flags.root.length > 0 ? flags.root : rootsFrom(flags.topology);
        const card = await fetchCard(roots, jobId, flags.timeoutMs);
        process.stdout.write(flags.json === true ? JSON.stringify(card, null, 2) + "\n" : formatJobCard(card));
      } catch (err) {
        exitOnError(err);
      }
    });
}

/** The roots' HTTP addresses of the topology given, else $BANYAN_TOPOLOGY's, else the installed one's. */
export function rootsFrom(topology: string | undefined): string[] {
  const path = topology ?? process.env["BANYAN_TOPOLOGY"] ?? DEFAULT_TOPOLOGY;
  if (!existsSync(path)) throw new BanyanError(Code.InvalidArgument, `no topology at ${path}: give --root <host:port> or --topology <file>`);
  return readTopologyFile(path).roots.map((r) => r.http);
}

/** The card from the first root that has it; an error naming each root's answer when none does. */
export async function fetchCard(roots: readonly string[], jobId: string, timeoutMs: number): Promise<JobCard> {
  const said: string[] = [];
  for (const root of roots) {
    const base = /^https?:\/\//.test(root) ? root.replace(/\/$/, "") : `http://${root}`;
    try {
      const res = await fetch(`${base}/api/v1/jobs/${encodeURIComponent(jobId)}/report`, { signal: AbortSignal.timeout(timeoutMs) });
      if (res.status === 200) return (await res.json()) as JobCard;
      await res.body?.cancel();
      said.push(`${root}: ${res.status === 404 ? "does not know the job" : `HTTP ${res.status}`}`);
    } catch (err) {
      said.push(`${root}: ${whyUnreachable(err, timeoutMs)}`);
    }
  }
  throw new BanyanError(Code.Failed, `no card for job ${jobId}:\n  ${said.join("\n  ")}`);
}
