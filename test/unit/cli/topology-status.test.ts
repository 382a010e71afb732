import t from "tap";
import { formatClusterStatus, mergeStatuses } from "../../../src/cli/topology-status.js";
import type { RootStatusReport, TreeStatus } from "../../../src/root/fleet/root-status.js";
import { generateTopology } from "../../../src/tools/topology/generate.js";
import { expandHostlist } from "../../../src/topology/hostlist.js";

const { topology } = generateTopology({ nodes: expandHostlist("n[1-8]"), roots: expandHostlist("r[1-2]"), trees: 2 });
const nodesOf = (tree: number): string[] => [...topology.nodes].filter(([, r]) => r.tree === tree).map(([n]) => n);
const tree = (over: Partial<TreeStatus> & { tree: number }): TreeStatus => ({ planned_root: "", own: true, nodes: 0, up: 0, down_nodes: [], guest_nodes: [], away_nodes: [], failovers_1h: 0, resyncs_1h: 0, ...over });
const report = (root: string, trees: TreeStatus[]): RootStatusReport => ({ root, time: new Date(0).toISOString(), trees });

t.test("topology status - the nodes of a root that does not answer are unknown, not down; those another root has are up", async (t) => {
  const t0 = topology.roots.find((r) => r.name === "r1")!.trees[0]!;
  const t1 = topology.roots.find((r) => r.name === "r2")!.trees[0]!;
  const [guest, ...rest] = nodesOf(t0);
  // r1 unreachable; r2 has one of r1's nodes as a guest (it failed over there) and one of its own down.
  const s = mergeStatuses(
    topology,
    new Map<string, RootStatusReport | Error>([
      ["r1", new Error("connect ECONNREFUSED")],
      ["r2", report("r2", [tree({ tree: t1, down_nodes: [nodesOf(t1)[0]!] }), tree({ tree: t0, own: false, guest_nodes: [guest!] })])],
    ]),
  );
  const cut = s.trees.find((x) => x.tree === t0)!;
  t.same(cut.down_nodes, [], "none of the silent root's nodes said down");
  t.same(cut.unknown_nodes, rest, "the ones nobody has: unknown");
  t.equal(cut.up, 1, "the guest at r2: up");
  const other = s.trees.find((x) => x.tree === t1)!;
  t.same(other.down_nodes, [nodesOf(t1)[0]], "a root that answers: its down nodes are down");
  t.same(other.unknown_nodes, []);
  const table = formatClusterStatus(s);
  t.match(table, /^tree\s+root\s+nodes\s+up\s+down\s+unknown\s+away/m);
  t.match(table, new RegExp(`^${t0}\\s+r1 \\(unreachable\\)\\s+${nodesOf(t0).length}\\s+1\\s+0\\s+${rest.length}\\s`, "m"));
  t.match(table, new RegExp(`, ${rest.length} unknown \\(their root did not answer\\)$`, "m"));
  t.match(table, /unreachable root r1: connect ECONNREFUSED/);
});
