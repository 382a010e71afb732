import t from "tap";
import { parseSwitchLayout } from "../../../../src/tools/topology/switch-layout.js";

t.test("switch layout - reads leaf switches and orders them depth-first under the spines", async (t) => {
  const layout = parseSwitchLayout(
    [
      "# Slurm topology.conf",
      "SwitchName=s0 Nodes=tux[0-3] LinkSpeed=900",
      "SwitchName=s1 Nodes=tux[4-7]",
      "SwitchName=s2 Nodes=tux[8-11]",
      "SwitchName=top2 Switches=s[0,2]",
      "switchname=top1 switches=s1   # keys are case-insensitive, as in Slurm",
      "SwitchName=s3 \\",
      "  Nodes=tux[12-13]",
    ].join("\n"),
    "topology.conf",
  );
  t.equal(layout.switchOf.get("tux5"), "s1");
  t.equal(layout.switchOf.get("tux13"), "s3");
  t.same(layout.leafOrder, ["s0", "s2", "s1", "s3"], "leaves of one spine are adjacent");
});

t.test("switch layout - block topology lines count as leaf groups", async (t) => {
  const layout = parseSwitchLayout("BlockName=b1 Nodes=n[1-2]\nBlockName=b2 Nodes=n[3-4]\nBlockSizes=2,4\n", "topology.conf");
  t.same(layout.leafOrder, ["b1", "b2"]);
  t.equal(layout.switchOf.get("n3"), "b2");
});

t.test("switch layout - errors name the file and line", async (t) => {
  const bad: [string, RegExp][] = [
    ["SwitchName=s0 Nodes=a[1-2]\nSwitchName=s0 Nodes=b1", /topology\.conf:2: switch s0 is defined twice/],
    ["SwitchName=s0 Nodes=a[1-2]\nSwitchName=s1 Nodes=a2", /topology\.conf:2: node a2 is under both s0 and s1/],
    ["SwitchName=s0 Switches=ghost", /topology\.conf:1: switch s0 names unknown switch ghost/],
    ["SwitchName=s0 Colour=red", /topology\.conf:1: unknown key "Colour"/],
    ["Nodes=a1", /topology\.conf:1: line has no SwitchName=/],
    ["SwitchName=s0 garbage", /topology\.conf:1: expected Key=Value, got "garbage"/],
    ["\n\nSwitchName=s0 Nodes=a[1-", /topology\.conf:3: Nodes: unclosed '\['/],
  ];
  for (const [text, expected] of bad) t.throws(() => parseSwitchLayout(text, "topology.conf"), expected, String(expected));
});
