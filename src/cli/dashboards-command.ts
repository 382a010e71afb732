import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Command, Option } from "commander";
import { stringify } from "yaml";
import { BanyanError, Code } from "../core/errors.js";
import { exitOnError } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";
import { DASHBOARDS } from "../tools/dashboards/banyan-dashboards.js";
import { dashboardJson, queriesOf } from "../tools/dashboards/grafana.js";

/** Grafana's file provider for the written directory: drop it in provisioning/dashboards/. */
export function providerYaml(dir: string, folder: string): string {
  const provider = { apiVersion: 1, providers: [{ name: "banyan", folder, type: "file", disableDeletion: false, allowUiUpdates: true, options: { path: dir, foldersFromFilesStructure: false } }] };
  return (
    "# Grafana file provisioning of Banyan's dashboards (banyan dashboards generate).\n" +
    "# Copy into Grafana's provisioning/dashboards/ directory; the dashboards' data source is a\n" +
    "# variable: pick the Prometheus (or VictoriaMetrics, Mimir) that scrapes the roots.\n" +
    stringify(provider)
  );
}

const REFRESH = /^(|\d+(ms|s|m|h|d))$/;

export function dashboardsCommand(): Command {
  const generate = subcommand("generate")
    .description("write Grafana dashboards (provisioning-ready JSON) for the cluster, a job, a user and Banyan's health")
    .requiredOption("--out <dir>", "directory to write banyan-cluster.json, banyan-job.json, banyan-user.json, banyan-health.json and banyan-provider.yaml into (made if missing)")
    .option("--refresh <every>", 'dashboards\' refresh (Grafana\'s format: 5s, 1m; "" for none)', "5s")
    .option("--folder <name>", "Grafana folder the provider file puts them in", "Banyan")
    .addOption(new Option("--list", "print each panel's expressions instead of writing files"))
    .addHelpText(
      "after",
      `
Dashboards (each has a data source variable; all read what a Banyan root serves):
  banyan-cluster.json  the USE method per Slurm partition (CPU, memory, GPU, network, disk; load
                       per core, PSI; network errors, nodes down, failovers), the trees, and a
                       heatmap of every node (variables: cluster, partition)
  banyan-job.json      one job (variable job_id): its nodes, CPU, efficiency, memory, I/O and GPUs
                       per node, and each node's series while the job ran on it
  banyan-user.json     one user's jobs (variable user): how many, where, and their efficiency
  banyan-health.json   Banyan itself: nodes up, ingest, latency, resyncs, memory, refusals

Partitions come from banyan_node_partition_info, which agents send when Slurm is enabled
(jobs.enabled). At a central root the cluster variable picks clusters; elsewhere it is All.

Examples:
  banyan dashboards generate --out /var/lib/grafana/dashboards/banyan
  banyan dashboards generate --out dashboards/ --refresh 10s --folder HPC
  banyan dashboards generate --out /tmp/x --list`,
    )
    .action((flags: { out: string; refresh: string; folder: string; list?: boolean }) => {
      try {
        if (!REFRESH.test(flags.refresh)) throw new BanyanError(Code.InvalidConfig, `--refresh ${JSON.stringify(flags.refresh)}: expected Grafana's form, like 5s or 1m, or "" for none`);
        if (flags.list === true) {
          for (const [file, make] of Object.entries(DASHBOARDS)) for (const q of queriesOf(make())) process.stdout.write(`${file}\t${q.panel}\t${q.expr}\n`);
          return;
        }
        const dir = resolve(flags.out);
        try {
          mkdirSync(dir, { recursive: true });
        } catch (err) {
          throw new BanyanError(Code.InvalidConfig, `--out ${flags.out}: cannot make the directory (${(err as Error).message})`);
        }
        for (const [file, make] of Object.entries(DASHBOARDS)) writeFileSync(join(dir, file), JSON.stringify(dashboardJson(make(), { refresh: flags.refresh }), null, 2) + "\n");
        writeFileSync(join(dir, "banyan-provider.yaml"), providerYaml(dir, flags.folder));
        process.stderr.write(`${Object.keys(DASHBOARDS).length} dashboards and banyan-provider.yaml written to ${dir}\n`);
      } catch (err) {
        exitOnError(err);
      }
    });
  return subcommand("dashboards").description("Grafana dashboards generated for Banyan's series").addCommand(generate);
}
