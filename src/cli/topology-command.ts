import { Command, Option } from "commander";
import { BanyanError, Code } from "../core/errors.js";
import { checkTopology } from "../tools/topology/check.js";
import {
  DEFAULT_FANOUT,
  DEFAULT_HTTP_PORT,
  DEFAULT_TREE_PORT,
  DEFAULT_TREES,
  generateTopology,
} from "../tools/topology/generate.js";
import { readHostlistArgument } from "../topology/hostlist.js";
import { centralCommand } from "./topology-central-command.js";
import { RENDER_FORMATS, renderTopology, type RenderFormat } from "../tools/topology/renderers.js";
import { readSwitchLayout } from "../tools/topology/switch-layout.js";
import { formatTopology, readTopologyFile, writeTopologyFile } from "../topology/topology-file.js";
import { diffTopologies, topologyStats, type TopologyStats } from "../tools/topology/topology-stats.js";
import { exitOnError, intOption } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";
import { fetchRootStatuses, formatClusterStatus, mergeStatuses } from "./topology-status.js";

export function topologyCommand(): Command {
  const cmd = subcommand("topology")
    .description("generate, check, show, compare and draw the trees of a cluster")
    .addHelpText(
      "after",
      `
Examples:
  banyan topology generate --nodes 'node[0001-4096]' --roots 'svc[1-2]' -o topology.json
  banyan topology check topology.json
  banyan topology show topology.json
  banyan topology render topology.json --format prometheus > banyan-scrape.yml
  banyan topology status topology.json
  banyan topology central --cluster 'siteA=rootA[1-2]' --cluster 'siteB=rootB[1-2]' --roots 'central[1-2]' -o central.json`,
    );
  cmd.addCommand(generateCommand());
  cmd.addCommand(centralCommand());
  cmd.addCommand(checkCommand());
  cmd.addCommand(showCommand());
  cmd.addCommand(diffCommand());
  cmd.addCommand(renderCommand());
  cmd.addCommand(statusCommand());
  return cmd;
}

interface GenerateFlags {
  nodes: string;
  roots: string;
  relays?: string;
  trees: number;
  fanout: number;
  port: number;
  httpPort: number;
  switches?: string;
  previous?: string;
  local?: number;
  output: string;
}

function generateCommand(): Command {
  return subcommand("generate")
    .description("build the trees from a node list and write the topology file")
    .requiredOption("--nodes <hostlist|@file>", "compute nodes: a Slurm hostlist, or @file with one name or hostlist per line")
    .requiredOption("--roots <hostlist>", "root hosts (service nodes); with fewer roots than trees each takes several, round-robin")
    .option("--relays <hostlist|@file>", "dedicated relay hosts (`banyan relay`), dealt to the trees and placed right under their roots")
    .option("--trees <n>", "number of trees", intOption(1, 4096), DEFAULT_TREES)
    .option("--fanout <n>", "children per node", intOption(1, 1024), DEFAULT_FANOUT)
    .option("--port <n>", "gRPC (tree) port of every host", intOption(1, 65535), DEFAULT_TREE_PORT)
    .option("--http-port <n>", "HTTP port of the roots (Prometheus /metrics)", intOption(1, 65535), DEFAULT_HTTP_PORT)
    .option("--switches <topology.conf>", "Slurm topology.conf: keep parent and child on the same leaf switch")
    .option("--previous <old.json>", "keep nodes where this earlier topology had them (few moves on add/remove)")
    .option("--local <base-port>", "one-machine cluster: every host on 127.0.0.1, ports from base-port up", intOption(1, 65535))
    .requiredOption("-o, --output <file>", "where to write the topology JSON (- for stdout)")
    .addHelpText(
      "after",
      `
Nodes are split into --trees balanced trees (sizes differ by at most one), each a complete tree
of --fanout under its root host. Every node gets a fallback chain: grandparent and further
ancestors, its tree's root, then the other roots. Default ports 7470 (gRPC) and 7471 (HTTP) stay
clear of Prometheus, Pushgateway, Alertmanager, node_exporter, dcgm-exporter and the Slurm exporter.

Examples:
  banyan topology generate --nodes 'node[0001-4096],gpu[01-64]' --roots 'svc[1-4]' -o topology.json
  sinfo -h -N -o %N | sort -u > nodes.txt     # every node of the cluster, one per line
  banyan topology generate --nodes @nodes.txt --roots svc1,svc2 --switches /etc/slurm/topology.conf -o topology.json
  banyan topology generate --nodes @nodes.txt --roots svc1,svc2 --previous topology.json -o topology-new.json
  banyan topology generate --nodes @nodes.txt --roots svc1,svc2 --relays 'svc[3-10]' -o topology.json
  banyan topology generate --nodes 'n[01-64]' --roots 'r[1-2]' --local 17000 -o local.json`,
    )
    .action((flags: GenerateFlags) => {
      try {
        const started = process.hrtime.bigint();
        const nodes = readHostlistArgument(flags.nodes);
        const roots = readHostlistArgument(flags.roots);
        const relays = flags.relays !== undefined ? readHostlistArgument(flags.relays) : [];
        const switches = flags.switches !== undefined ? { path: flags.switches, layout: readSwitchLayout(flags.switches) } : null;
        const previous = flags.previous !== undefined ? readTopologyFile(flags.previous) : null;
        const { topology, warnings } = generateTopology({
          nodes,
          roots,
          relays,
          trees: flags.trees,
          fanout: flags.fanout,
          port: flags.port,
          httpPort: flags.httpPort,
          local: flags.local ?? null,
          switches,
          previous,
        });
        if (flags.output === "-") process.stdout.write(formatTopology(topology));
        else writeTopologyFile(flags.output, topology);
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
        const s = topologyStats(topology).totals;
        const where = flags.output === "-" ? "stdout" : flags.output;
        process.stderr.write(
          `wrote ${where}: ${s.nodes - relays.length} nodes${relays.length > 0 ? ` and ${relays.length} relays` : ""} in ${s.trees} trees under ${s.roots} roots, depth ${s.maxDepth}, ` +
            `max fan-in ${s.maxFanIn}${s.crossSwitchEdges !== null ? `, ${s.crossSwitchEdges} edges cross switches` : ""} (${ms.toFixed(0)} ms)\n`,
        );
        if (previous !== null) {
          const d = diffTopologies(previous, topology);
          process.stderr.write(
            `against ${flags.previous}: ${d.added.length} added, ${d.removed.length} removed, ` +
              `${d.moved.length} kept nodes changed parent, ${d.changedTree.length} changed tree\n`,
          );
        }
      } catch (err) {
        exitOnError(err);
      }
    });
}

function checkCommand(): Command {
  return subcommand("check")
    .description("check a topology file: exit 0 when sound, 1 with one line per problem")
    .argument("<file>", "topology JSON")
    .addHelpText(
      "after",
      `
Reports unknown names, cycles, children not listed under their parent, fan-in over the limit,
unbalanced trees, trees deeper than complete, fallbacks that are descendants, duplicate
addresses and roots listed as compute nodes. A file that is not a topology at all exits 2.

Example:
  banyan topology check topology.json || echo "do not roll this out"`,
    )
    .action((file: string) => {
      try {
        const t = readTopologyFile(file);
        const problems = checkTopology(t);
        if (problems.length === 0) {
          process.stdout.write(`${file}: sound: ${t.nodes.size} nodes, ${t.params.trees} trees, ${t.roots.length} roots\n`);
          return;
        }
        for (const p of problems) process.stdout.write(`${file}: ${p}\n`);
        process.exitCode = 1;
      } catch (err) {
        exitOnError(err);
      }
    });
}

function showCommand(): Command {
  return subcommand("show")
    .description("describe a topology: per tree root, nodes, depth, max fan-in; totals")
    .argument("<file>", "topology JSON")
    .option("--json", "print the figures as JSON")
    .addHelpText("after", "\nExample:\n  banyan topology show topology.json --json | jq .totals")
    .action((file: string, flags: { json?: boolean }) => {
      try {
        const stats = topologyStats(readTopologyFile(file));
        process.stdout.write(flags.json === true ? JSON.stringify(stats, null, 2) + "\n" : formatStats(stats));
      } catch (err) {
        exitOnError(err);
      }
    });
}

function diffCommand(): Command {
  return subcommand("diff")
    .description("compare two topology files: nodes added, removed, and kept nodes that changed parent or tree")
    .argument("<old>", "topology JSON in use")
    .argument("<new>", "topology JSON to roll out")
    .option("--json", "print the lists as JSON")
    .addHelpText("after", "\nExample:\n  banyan topology diff topology.json topology-new.json")
    .action((oldFile: string, newFile: string, flags: { json?: boolean }) => {
      try {
        const d = diffTopologies(readTopologyFile(oldFile), readTopologyFile(newFile));
        if (flags.json === true) {
          process.stdout.write(JSON.stringify(d, null, 2) + "\n");
          return;
        }
        const list = (names: readonly string[]): string =>
          names.length === 0 ? "" : `: ${names.slice(0, 20).join(" ")}${names.length > 20 ? " …" : ""}`;
        process.stdout.write(
          [
            `added ${d.added.length}${list(d.added)}`,
            `removed ${d.removed.length}${list(d.removed)}`,
            `moved (kept nodes with a new parent) ${d.moved.length}${list(d.moved)}`,
            `changed tree ${d.changedTree.length}${list(d.changedTree)}`,
          ].join("\n") + "\n",
        );
      } catch (err) {
        exitOnError(err);
      }
    });
}

function renderCommand(): Command {
  return subcommand("render")
    .description("print the topology in another format: a Prometheus scrape config of the roots, or a DOT picture")
    .argument("<file>", "topology JSON")
    .addOption(new Option("--format <format>", "output format").choices(RENDER_FORMATS).makeOptionMandatory())
    .option("--scrape-interval <duration>", "prometheus: scrape interval (and timeout); auto fits it to the largest root's series", "auto")
    .option("--series-per-node <n>", "prometheus: series each node sends, for --scrape-interval auto", intOption(1, 10_000_000), 500)
    .option("--job-name <name>", "prometheus: job name for the roots' own metrics", "banyan")
    .addOption(new Option("--part <part>", "prometheus: file (a whole file: --config.file, or scrape_config_files: on Prometheus ≥ 2.43) or job (the job alone, to paste under scrape_configs: of an existing prometheus.yml, any version)").choices(["file", "job"]).default("file"))
    .addHelpText(
      "after",
      `
Examples:
  banyan topology render topology.json --format prometheus > /etc/prometheus/banyan.yml   # scrape_config_files (≥ 2.43)
  banyan topology render topology.json --format prometheus --part job                    # to paste (any version)
  banyan topology render topology.json --format dot | dot -Tsvg > trees.svg   # dot: Graphviz (apt-get install graphviz)`,
    )
    .action((file: string, flags: { format: RenderFormat; scrapeInterval: string; seriesPerNode: number; jobName: string; part: "file" | "job" }) => {
      try {
        if (flags.scrapeInterval !== "auto" && !/^\d+(ms|s|m|h)$/.test(flags.scrapeInterval)) {
          throw new BanyanError(Code.InvalidArgument, `--scrape-interval: got ${JSON.stringify(flags.scrapeInterval)}, expected auto or a duration like 1s or 500ms`);
        }
        const t = readTopologyFile(file);
        process.stdout.write(renderTopology(t, flags.format, { scrapeInterval: flags.scrapeInterval, seriesPerNode: flags.seriesPerNode, jobName: flags.jobName, part: flags.part }));
      } catch (err) {
        exitOnError(err);
      }
    });
}

function statusCommand(): Command {
  return subcommand("status")
    .description("ask every root of a running cluster how its trees are: nodes up and down, away from their planned parent, failovers")
    .argument("<file>", "topology JSON")
    .option("--json", "print the merged status as JSON")
    .option("--timeout-ms <ms>", "how long to wait for each root", intOption(1, 600_000), 3000)
    .option("--wait-s <s>", "ask again, every second, until every root answers (just started, they may not listen yet) or this long has passed", intOption(0, 3600), 0)
    .addHelpText(
      "after",
      `
Each root serves /api/v1/status; a node counts as up when any root has it (after a failover it is
a guest at another root). Exits 0 when every root answered, 1 when one did not (the table still
shows what the others know). Right after starting the roots, --wait-s 30 gives them the time to listen.

Example:
  banyan topology status /etc/banyan/topology.json`,
    )
    .action(async (file: string, flags: { json?: boolean; timeoutMs: number; waitS: number }) => {
      try {
        const t = readTopologyFile(file);
        const until = Date.now() + flags.waitS * 1000;
        let answers = await fetchRootStatuses(t, flags.timeoutMs);
        while ([...answers.values()].some((a) => a instanceof Error) && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 1000));
          answers = await fetchRootStatuses(t, flags.timeoutMs);
        }
        const merged = mergeStatuses(t, answers);
        process.stdout.write(flags.json === true ? JSON.stringify(merged, null, 2) + "\n" : formatClusterStatus(merged));
        if (merged.unreachable.length > 0) process.exitCode = 1;
      } catch (err) {
        exitOnError(err);
      }
    });
}

function formatStats(s: TopologyStats): string {
  const withCross = s.totals.crossSwitchEdges !== null;
  const header = ["tree", "root", "nodes", "depth", "max fan-in", ...(withCross ? ["cross-switch edges"] : [])];
  const rows = s.trees.map((t) => [
    String(t.tree),
    t.root,
    String(t.nodes),
    String(t.depth),
    String(t.maxFanIn),
    ...(withCross ? [String(t.crossSwitchEdges)] : []),
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]): string => cells.map((c, k) => c.padEnd(widths[k]!)).join("  ").trimEnd();
  const tot = s.totals;
  return (
    [line(header), ...rows.map(line)].join("\n") +
    `\ntotal: ${tot.nodes} nodes, ${tot.trees} trees, ${tot.roots} roots, fanout ${tot.fanout}, ` +
    `max depth ${tot.maxDepth}, max fan-in ${tot.maxFanIn}` +
    (withCross ? `, ${tot.crossSwitchEdges} edges cross switches` : "") +
    "\n"
  );
}
