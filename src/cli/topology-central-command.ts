import { Command } from "commander";
import { BanyanError, Code } from "../core/errors.js";
import { DEFAULT_HTTP_PORT, DEFAULT_TREE_PORT } from "../tools/topology/generate.js";
import { generateCentralTopology } from "../tools/topology/central.js";
import { readHostlistArgument } from "../topology/hostlist.js";
import { formatTopology, writeTopologyFile } from "../topology/topology-file.js";
import { exitOnError, intOption } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";

interface CentralFlags {
  cluster: string[];
  roots: string;
  port: number;
  httpPort: number;
  local?: number;
  output: string;
}

/** `banyan topology central`: the topology of central roots whose children are clusters' roots. */
export function centralCommand(): Command {
  return subcommand("central")
    .description("the topology of a central Banyan: the roots of several clusters uplink into central roots")
    .requiredOption("--cluster <name=hostlist>", "a cluster's name (its `cluster` label) and its roots; repeat per cluster", (v: string, acc: string[]) => [...acc, v], [] as string[])
    .requiredOption("--roots <hostlist>", "central roots: the first is every cluster root's parent, the others its fallbacks in order")
    .option("--port <n>", "gRPC (tree) port of the central roots", intOption(1, 65535), DEFAULT_TREE_PORT)
    .option("--http-port <n>", "HTTP port of the central roots", intOption(1, 65535), DEFAULT_HTTP_PORT)
    .option("--local <base-port>", "one-machine setup: every host on 127.0.0.1, ports from base-port up", intOption(1, 65535))
    .requiredOption("-o, --output <file>", "where to write the topology JSON (- for stdout)")
    .addHelpText(
      "after",
      `
Each cluster root names this file and its own name in it in its config (central.topology,
central.name), and forwards what its central.forward filter allows. Its origins arrive here as
<cluster>/<node>, exposed with cluster="<cluster>" and instance="<node>"; a cluster's link can carry
no other cluster's names.

Example:
  banyan topology central --cluster 'siteA=rootA[1-2]' --cluster 'siteB=rootB1' --roots 'central[1-2]' -o central.json`,
    )
    .action((flags: CentralFlags) => {
      try {
        const clusters = flags.cluster.map((c) => {
          const eq = c.indexOf("=");
          if (eq <= 0) throw new BanyanError(Code.InvalidArgument, `--cluster ${JSON.stringify(c)}: expected name=hostlist, e.g. siteA=rootA[1-2]`);
          return { name: c.slice(0, eq), roots: readHostlistArgument(c.slice(eq + 1)) };
        });
        const topology = generateCentralTopology({ clusters, roots: readHostlistArgument(flags.roots), port: flags.port, httpPort: flags.httpPort, local: flags.local ?? null });
        if (flags.output === "-") process.stdout.write(formatTopology(topology));
        else writeTopologyFile(flags.output, topology);
        process.stderr.write(`wrote ${flags.output === "-" ? "stdout" : flags.output}: ${clusters.length} clusters, ${topology.nodes.size} cluster roots under ${topology.roots[0]!.name}${topology.roots.length > 1 ? `, falling back to ${topology.roots.slice(1).map((r) => r.name).join(", ")}` : ""}\n`);
      } catch (err) {
        exitOnError(err);
      }
    });
}
