import t from "tap";
import { checkTopology } from "../../../../src/tools/topology/check.js";
import { generateCentralTopology } from "../../../../src/tools/topology/central.js";
import { formatTopology, parseTopology } from "../../../../src/topology/topology-file.js";
import { OriginAuthority } from "../../../../src/wire/origin-authority.js";

t.test("topology central - every cluster root under the first central root, the others its fallbacks; sound, and read back with its clusters", async (t) => {
  const topo = generateCentralTopology({ clusters: [{ name: "siteA", roots: ["ra1", "ra2"] }, { name: "siteB", roots: ["rb1"] }], roots: ["c1", "c2", "c3"], port: 7470, httpPort: 7471 });
  t.same(checkTopology(topo), [], "check finds nothing wrong");
  t.same(topo.roots.map((r) => [r.name, r.address, r.trees, r.children]), [
    ["c1", "c1:7470", [0], ["ra1", "ra2", "rb1"]],
    ["c2", "c2:7470", [], []],
    ["c3", "c3:7470", [], []],
  ]);
  const back = parseTopology(JSON.parse(formatTopology(topo)), "central.json");
  t.same(back.nodes.get("ra2"), { tree: 0, slot: 1, address: "ra2:7470", parent: "c1", children: [], fallbacks: ["c2", "c3"], cluster: "siteA" });
  const auth = new OriginAuthority(back);
  t.ok(auth.carries("ra1", "siteA/n0001"), "a cluster root carries its cluster's names");
  t.notOk(auth.carries("ra1", "siteB/n0001"), "not another cluster's");
  t.notOk(auth.carries("ra1", "n0001"), "nor a bare name");
  t.notOk(auth.carries("ra1", "siteA/"), "nor an empty node");
  t.notOk(auth.carries("ra1", "siteA/a/b"), "nor a nested one");
  t.notOk(auth.carries("ra1", "siteAB/n1"), "a cluster name's prefix is not the cluster");
});

t.test("topology central - what is wrong is refused with the flag that is wrong", async (t) => {
  const base = { clusters: [{ name: "siteA", roots: ["ra1"] }], roots: ["c1"] };
  t.throws(() => generateCentralTopology({ ...base, roots: [] }), { message: /--roots: no central roots/ });
  t.throws(() => generateCentralTopology({ ...base, clusters: [] }), { message: /--cluster: no clusters/ });
  t.throws(() => generateCentralTopology({ ...base, clusters: [{ name: "a b", roots: ["x"] }] }), { message: /--cluster: "a b": expected a cluster name/ });
  t.throws(() => generateCentralTopology({ ...base, clusters: [{ name: "a", roots: ["x"] }, { name: "b", roots: ["x"] }] }), { message: /--cluster roots: x is listed twice/ });
  t.throws(() => generateCentralTopology({ ...base, clusters: [{ name: "a", roots: ["c1"] }] }), { message: /c1 is also a central root/ });
  t.throws(() => generateCentralTopology({ ...base, clusters: [{ name: "a", roots: [] }] }), { message: /--cluster a: no roots/ });
});
