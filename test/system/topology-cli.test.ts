import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";

const dir = mkdtempSync(join(tmpdir(), "banyan-cli-"));
const file = (name: string): string => join(dir, name);

t.test("topology CLI - an administrator generates, checks, shows and renders a cluster", async (t) => {
  writeFileSync(file("nodes.txt"), "# scontrol show hostnames\n" + Array.from({ length: 500 }, (_, k) => `cn${String(k + 1).padStart(4, "0")}`).join("\n") + "\ngpu[01-12]\n");
  const gen = banyan(["topology", "generate", "--nodes", `@${file("nodes.txt")}`, "--roots", "svc[1-2]", "-o", file("topo.json")]);
  t.equal(gen.status, 0, gen.stderr);
  t.match(gen.stderr, /wrote .*topo\.json: 512 nodes in 8 trees under 2 roots, depth 6, max fan-in 2/);

  const check = banyan(["topology", "check", file("topo.json")]);
  t.equal(check.status, 0, check.stdout);
  t.match(check.stdout, /sound: 512 nodes, 8 trees, 2 roots/);

  const show = banyan(["topology", "show", file("topo.json")]);
  t.equal(show.status, 0);
  t.match(show.stdout, /^tree\s+root\s+nodes\s+depth\s+max fan-in/);
  t.match(show.stdout, /^0\s+svc1\s+64\s+6\s+2$/m);
  t.match(show.stdout, /total: 512 nodes, 8 trees, 2 roots, fanout 2, max depth 6, max fan-in 2/);

  const json = JSON.parse(banyan(["topology", "show", file("topo.json"), "--json"]).stdout);
  t.equal(json.totals.nodes, 512);
  t.equal(json.trees.length, 8);

  const prom = banyan(["topology", "render", file("topo.json"), "--format", "prometheus"]);
  t.equal(prom.status, 0);
  t.match(prom.stdout, /honor_labels: true/);
  t.match(prom.stdout, /"svc2:7471"/);
  const dot = banyan(["topology", "render", file("topo.json"), "--format", "dot"]);
  t.match(dot.stdout, /^digraph banyan \{/);

  const topo = JSON.parse(readFileSync(file("topo.json"), "utf8"));
  t.equal(topo.version, 1);
  t.same(topo.params.trees, 8);
  t.same(Object.keys(topo.nodes[`cn0001`]).sort(), ["address", "children", "fallbacks", "parent", "slot", "tree"]);
});

t.test("topology CLI - regenerating with --previous after removing nodes reports the few moves", async (t) => {
  banyan(["topology", "generate", "--nodes", "node[001-256]", "--roots", "svc1,svc2", "-o", file("v1.json")]);
  const gen = banyan(["topology", "generate", "--nodes", "node[001-100,104-256],node[300-301]", "--roots", "svc1,svc2", "--previous", file("v1.json"), "-o", file("v2.json")]);
  t.equal(gen.status, 0, gen.stderr);
  const m = /against .*v1\.json: 2 added, 3 removed, (\d+) kept nodes changed parent/.exec(gen.stderr);
  t.ok(m, gen.stderr);
  t.ok(Number(m![1]) <= 15, `${m![1]} moved for 5 changes`);
  const diff = banyan(["topology", "diff", file("v1.json"), file("v2.json")]);
  t.match(diff.stdout, /^added 2: node300 node301$/m);
  t.match(diff.stdout, /^removed 3: node101 node102 node103$/m);
  t.equal(banyan(["topology", "check", file("v2.json")]).status, 0);
});

t.test("topology CLI - --switches keeps trees inside racks and show counts crossing edges", async (t) => {
  writeFileSync(
    file("topology.conf"),
    "SwitchName=leaf1 Nodes=node[001-032]\nSwitchName=leaf2 Nodes=node[033-064]\nSwitchName=spine Switches=leaf[1-2]\n",
  );
  const gen = banyan(["topology", "generate", "--nodes", "node[001-064]", "--roots", "svc1", "--trees", "2", "--switches", file("topology.conf"), "-o", file("rack.json")]);
  t.equal(gen.status, 0, gen.stderr);
  t.match(gen.stderr, /0 edges cross switches/);
  t.match(banyan(["topology", "show", file("rack.json")]).stdout, /cross-switch edges/);
});

t.test("topology CLI - --local gives a one-machine cluster on 127.0.0.1", async (t) => {
  const gen = banyan(["topology", "generate", "--nodes", "n[01-16]", "--roots", "r1", "--local", "23000", "-o", "-"]);
  const topo = JSON.parse(gen.stdout);
  t.equal(topo.roots[0].http, "127.0.0.1:23001");
  t.equal(topo.nodes.n16.address, "127.0.0.1:23017");
});

t.test("topology CLI - bad input exits 2 with a message that says what and where", async (t) => {
  const bad = banyan(["topology", "generate", "--nodes", "node[001-12", "--roots", "svc1", "-o", file("x.json")]);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /hostlist: unclosed '\[' at column 5\n  node\[001-12\n      \^/);
  const zero = banyan(["topology", "generate", "--nodes", "n1", "--roots", "svc1", "--trees", "0", "-o", file("x.json")]);
  t.equal(zero.status, 2);
  t.match(zero.stderr, /--trees <n>.*'0' is invalid/);
  t.equal(banyan(["topology", "generate", "--roots", "svc1", "-o", file("x.json")]).status, 2, "missing --nodes");
  t.equal(banyan(["topology", "frobnicate"]).status, 2, "unknown subcommand");
  const missing = banyan(["topology", "check", file("nope.json")]);
  t.equal(missing.status, 2);
  t.match(missing.stderr, /cannot read topology .*nope\.json/);
  writeFileSync(file("garbage.json"), "{ not json");
  t.match(banyan(["topology", "show", file("garbage.json")]).stderr, /garbage\.json: not JSON/);
  t.equal(banyan(["topology", "render", file("garbage.json"), "--format", "svg"]).status, 2, "unknown format");
  const interval = banyan(["topology", "render", file("topo.json"), "--format", "prometheus", "--scrape-interval", "soon"]);
  t.equal(interval.status, 2);
  t.match(interval.stderr, /--scrape-interval: got "soon"/);
});

t.test("topology CLI - check exits 1 with one line per problem", async (t) => {
  const topo = JSON.parse(readFileSync(file("topo.json"), "utf8"));
  topo.nodes.cn0002.parent = "ghost";
  topo.nodes.cn0003.address = topo.nodes.cn0004.address;
  writeFileSync(file("broken.json"), JSON.stringify(topo));
  const res = banyan(["topology", "check", file("broken.json")]);
  t.equal(res.status, 1);
  const lines = res.stdout.trim().split("\n");
  t.ok(lines.some((l) => /broken\.json: node cn0002: parent ghost is unknown/.test(l)), res.stdout);
  t.ok(lines.some((l) => /broken\.json: address cn0004:7470: used by both node cn0003 and node cn0004/.test(l)), res.stdout);
});

t.test("topology CLI - every subcommand's --help explains its options with an example", async (t) => {
  for (const sub of [[], ["generate"], ["check"], ["show"], ["diff"], ["render"]]) {
    const res = banyan(["topology", ...sub, "--help"]);
    t.equal(res.status, 0, `topology ${sub.join(" ")} --help`);
    t.match(res.stdout, /Example/, `topology ${sub.join(" ")} --help has an example`);
  }
  t.match(banyan(["--version"]).stdout, /^\d+\.\d+\.\d+/);
});
