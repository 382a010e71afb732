import fc from "fast-check";
import t from "tap";
import { generateTopology } from "../../../src/tools/topology/generate.js";
import { bindAddress, PHASE_BRANCH_DEPTH, samplingBranch, treeBindAddress } from "../../../src/topology/topology-lookup.js";

t.test("lookup - the tree port binds the topology's address only; HTTP a host name's port on every interface", async (t) => {
  t.equal(await treeBindAddress("10.1.2.3:7470", "test"), "10.1.2.3:7470", "an IP literal as it is");
  t.equal(await treeBindAddress("[::1]:7470", "test"), "[::1]:7470");
  t.match(await treeBindAddress("localhost:7470", "test"), /^(127\.0\.0\.1|\[::1\]):7470$/, "a host name resolved, not 0.0.0.0");
  t.equal(bindAddress("node01:9470"), "0.0.0.0:9470", "HTTP: every interface");
});

t.test("lookup - samplingBranch: a branch below depth 3 samples in one phase; a root link carries at most 7 phases", async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 8 }), (n, roots, trees) => {
      const names = Array.from({ length: n }, (_, k) => `c${k}`);
      const { topology } = generateTopology({ nodes: names, roots: Array.from({ length: roots }, (_, k) => `r${k}`), trees });
      const depth = (x: string): number => (topology.nodes.has(topology.nodes.get(x)!.parent) ? depth(topology.nodes.get(x)!.parent) + 1 : 1);
      for (const x of names) {
        const b = samplingBranch(topology, x);
        if (depth(x) <= PHASE_BRANCH_DEPTH && b !== x) return false;
        // Below that depth, a node shares its parent's branch.
        if (depth(x) > PHASE_BRANCH_DEPTH && b !== samplingBranch(topology, topology.nodes.get(x)!.parent)) return false;
      }
      // Phases under each child of a root: its own, its children's and their children's branches.
      for (const r of topology.roots) {
        for (const top of r.children) {
          const under = names.filter((x) => {
            let y: string | undefined = x;
            while (y !== undefined && topology.nodes.has(y) && y !== top) y = topology.nodes.get(y)!.parent;
            return y === top;
          });
          if (new Set(under.map((x) => samplingBranch(topology, x))).size > 1 + 2 + 4) return false;
        }
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.equal(samplingBranch({ roots: [], nodes: new Map() } as never, "elsewhere"), "elsewhere", "a name the topology lacks: its own phase");
});
