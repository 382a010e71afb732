import t from "tap";
import { checkTopology } from "../../../../src/tools/topology/check.js";
import { generateTopology } from "../../../../src/tools/topology/generate.js";
import { expandHostlist } from "../../../../src/topology/hostlist.js";
import { formatTopology, parseTopology, type Topology } from "../../../../src/topology/topology-file.js";

/** A sound 30-node, 2-tree topology as plain JSON, to break one way at a time. */
function soundJson(): any {
  const { topology } = generateTopology({ nodes: expandHostlist("n[01-30]"), roots: ["svc1", "svc2"], trees: 2 });
  return JSON.parse(formatTopology(topology));
}
const problemsOf = (raw: unknown): string[] => checkTopology(parseTopology(raw, "t.json"));

t.test("check - a generated topology is sound, and survives a write/read round trip", async (t) => {
  const raw = soundJson();
  t.same(problemsOf(raw), []);
  const again: Topology = parseTopology(JSON.parse(formatTopology(parseTopology(raw, "t.json"))), "t.json");
  t.same(JSON.parse(formatTopology(again)), raw);
});

t.test("check - reports each kind of broken topology in one line", async (t) => {
  const cases: [string, (j: any) => void, RegExp][] = [
    ["unknown parent", (j) => (j.nodes.n05.parent = "ghost"), /node n05: parent ghost is unknown/],
    ["unknown child", (j) => j.nodes.n01.children.push("ghost"), /node n01: child ghost is unknown/],
    ["unknown fallback", (j) => j.nodes.n05.fallbacks.push("ghost"), /node n05: fallback ghost is unknown/],
    ["child not listed under its parent", (j) => (j.nodes.n02.children = j.nodes.n02.children.slice(1)), /not listed in the children of its parent n02/],
    ["child not listed under its root", (j) => (j.roots[0].children = []), /not listed in the children of its root svc1/],
    [
      "cycle",
      (j) => {
        j.nodes.n01.parent = "n03";
        j.nodes.n03.children.push("n01");
      },
      /parent chain has a cycle/,
    ],
    ["fan-in over the limit", (j) => (j.params.fanout = 1), /fan-in 2 over the limit 1/],
    [
      "unbalanced trees",
      (j) => {
        for (const name of ["n16", "n17", "n18"]) delete j.nodes[name];
      },
      /trees unbalanced: sizes from 12 to 15/,
    ],
    [
      "fallback that is a descendant",
      (j) => j.nodes.n02.fallbacks.unshift(j.nodes.n02.children[0]),
      /node n02: fallback n0\d is its own descendant/,
    ],
    ["own fallback", (j) => j.nodes.n07.fallbacks.push("n07"), /node n07: is its own fallback/],
    ["duplicate addresses", (j) => (j.nodes.n09.address = j.nodes.n08.address), /address n08:7470: used by both node n08 and node n09/],
    ["duplicate root http", (j) => (j.roots[1].http = j.roots[0].http), /address svc1:7471: used by both root svc1 \(http\) and root svc2 \(http\)/],
    [
      "root listed as a compute node",
      (j) => (j.nodes.svc1 = { ...j.nodes.n30, address: "svc1:9999", children: [], parent: "n15" }),
      /root svc1: also listed as a compute node/,
    ],
    ["tree without root", (j) => (j.roots[1].trees = []), /tree 1: no root terminates it/],
    ["tree terminated twice", (j) => (j.roots[1].trees = [0, 1]), /tree 0: terminated by both svc1 and svc2/],
    ["tree out of range", (j) => (j.nodes.n30.tree = 5), /node n30: tree 5 does not exist/],
    ["wrong tree under parent", (j) => (j.nodes.n03.tree = 1), /node n03: in tree 1 but its parent n02 is in tree 0/],
    ["root of another tree", (j) => (j.nodes.n01.tree = 1), /node n01: in tree 1 but its root svc1 does not terminate that tree/],
    ["own parent", (j) => (j.nodes.n04.parent = "n04"), /node n04: is its own parent/],
    ["no fallback", (j) => (j.nodes.n04.fallbacks = []), /node n04: has no fallback/],
    ["child with another parent", (j) => j.nodes.n01.children.push("n20"), /node n01: lists child n20 whose parent is/],
  ];
  for (const [what, breakIt, expected] of cases) {
    const j = soundJson();
    breakIt(j);
    const problems = problemsOf(j);
    t.match(problems.join("\n"), expected, what);
    t.ok(problems.every((p) => !p.includes("\n")), `${what}: one line per problem`);
  }
});

t.test("check - a tree deeper than complete is reported", async (t) => {
  // Re-hang n05 under n04, the deepest node of tree 0 (depth 4), to stretch the tree to depth 5.
  const j = soundJson();
  const old = j.nodes.n05.parent;
  j.nodes[old].children = j.nodes[old].children.filter((c: string) => c !== "n05");
  j.nodes.n05.parent = "n04";
  j.nodes.n04.children.push("n05");
  t.match(problemsOf(j).join("\n"), /tree 0: depth 5 exceeds 4, the depth of a complete tree of 15 nodes/);
});

t.test("topology file - a malformed file names the path, the value and the expectation", async (t) => {
  const j = soundJson();
  j.nodes.n03.address = "n03";
  j.params.trees = "eight";
  try {
    parseTopology(j, "t.json");
    t.fail("should not parse");
  } catch (err) {
    const msg = (err as Error).message;
    t.match(msg, /t\.json: params\.trees: .*\(got "eight"\)/);
    t.match(msg, /t\.json: nodes\.n03\.address: .*host:port.*\(got "n03"\)/);
  }
  t.throws(() => parseTopology({ version: 2 }, "t.json"), /version/);
  t.throws(() => parseTopology([], "t.json"), /t\.json: \(top\)/);
});
