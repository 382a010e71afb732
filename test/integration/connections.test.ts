import t from "tap";
import { eventually, startCluster } from "../fixtures/cluster.js";

const BASE = 19300;

/**
 * Every node has a connection of its own to its parent, as on real hosts, even when one process
 * runs many nodes (the bench's relay workers, these tests). grpc-js shares one connection among
 * the clients of one process with one target; a parent then saw all their streams open on it at
 * once, more than the 8 a connection may hold before their Hello, and refused the rest (a bench's
 * start once took 84 s, 904 nodes marked down, 18 failovers, instead of 23 s).
 */
t.test("connections - nodes of one process each hold their own connection to their parent, and none is refused", async (t) => {
  const cluster = await startCluster({ nodes: "n[01-32]", roots: "r1", trees: 8, basePort: BASE, intervalMs: 200 });
  t.teardown(() => cluster.stop());
  const root = cluster.roots[0]!;
  const children = [...cluster.topology.nodes.values()].filter((n) => n.parent === "r1").length;
  t.ok(children >= 8, `the root has children in every tree (${children})`);
  const gauge = async (name: string): Promise<number> => (await root.registry.getSingleMetric(name)!.get()).values.reduce((s, v) => s + v.value, 0);
  t.ok(await eventually(() => cluster.upNodes().size === 32, 15_000), "every node up");
  t.ok(await eventually(async () => (await gauge("banyan_tree_connections")) >= children, 5000), `the root holds a connection per child (${await gauge("banyan_tree_connections")})`);
  t.equal(await gauge("banyan_relay_streams_refused_total"), 0, "no stream refused");
});
