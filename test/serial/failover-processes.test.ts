import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { DEFAULT_PRECISION_RULES, PrecisionRules } from "../../src/series/precision.js";
import { SeriesType } from "../../src/series/series-def.js";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep, startCluster } from "../fixtures/cluster.js";
import { httpText, startBanyan, type Started } from "../fixtures/processes.js";

const dir = mkdtempSync(join(tmpdir(), "banyan-failover-"));
// Each wait below is a bound, not a figure; together they can exceed the suite's 120 s per file.
t.setTimeout(240_000);

interface StatusJson {
  trees: { tree: number; up: number; nodes: number; down_nodes: string[]; away_nodes: { node: string; parent: string }[] }[];
  unreachable: unknown[];
}
const status = (topo: string): StatusJson => JSON.parse(banyan(["topology", "status", topo, "--json"]).stdout) as StatusJson;

t.test("failover - a relay stopped with SIGSTOP (hung, not dead) is routed around, and rejoins on SIGCONT", async (t) => {
  const topo = join(dir, "stop.json");
  const gen = banyan(["topology", "generate", "--nodes", "n[1-7]", "--roots", "r1", "--trees", "1", "--local", "29200", "-o", topo]);
  t.equal(gen.status, 0, gen.stderr);
  const procs: Started[] = [];
  t.teardown(async () => {
    for (const p of procs.reverse()) {
      p.proc.kill("SIGCONT");
      await p.stop();
    }
  });
  procs.push(startBanyan(["root", "--topology", topo, "--name", "r1", "--set", "intervalMs=500", "--set", "deadAfterMs=1500"]));
  const agents = new Map<string, Started>();
  for (let k = 1; k <= 7; k++) {
    const a = startBanyan(["agent", "--topology", topo, "--name", `n${k}`, "--source", "synthetic", "--set", "synthetic.series=30", "--set", "intervalMs=500", "--set", "ackTimeoutMs=1000", "--set", "healAfterMs=2000"]);
    agents.set(`n${k}`, a);
    procs.push(a);
  }
  t.ok(await eventually(() => status(topo).trees[0]?.up === 7, 30_000, 250), "7 up");
  const hung = "n2";
  const planned = JSON.parse(readFileSync(topo, "utf8")) as { nodes: Record<string, { parent: string; children: string[]; fallbacks: string[] }> };
  const children = planned.nodes[hung]!.children;
  t.ok(children.length > 0, `${hung} relays ${children.join(", ")}`);
  const stoppedAt = Date.now();
  agents.get(hung)!.proc.kill("SIGSTOP");
  // Normally the grandparent takes them; on a loaded machine a slow grandparent may miss an ack
  // deadline too and pass them further up the chain, which still routes around the hang.
  let parents = "";
  const routedAround = await eventually(() => {
    const s = status(topo).trees[0]!;
    const moved = children.map((c) => s.away_nodes.find((a) => a.node === c && planned.nodes[c]!.fallbacks.includes(a.parent)));
    parents = moved.map((a) => (a ? `${a.node}→${a.parent}` : "")).join(", ");
    return s.down_nodes.includes(hung) && moved.every((a) => a !== undefined);
  }, 60_000, 100);
  t.ok(routedAround, `${hung}'s children detected the hang and moved to a fallback parent of their chain (${parents})`);
  const tookMs = Date.now() - stoppedAt;
  t.comment(`hung relay routed around (${parents}, ${hung} down) ${tookMs} ms after SIGSTOP`);
  // Usually 2-3 s; once, on a loaded CI run, 21.8 s. Keep the logs of such a run to find out why.
  if (!routedAround || tookMs > 10_000) {
    for (const name of [planned.nodes[hung]!.parent, ...children]) t.comment(`log of ${name}:\n${agents.get(name)?.output().split("\n").slice(-40).join("\n")}`);
  }
  // On a loaded machine another node may miss an ack deadline too and sit at a fallback until it
  // heals, so the table counts at least the hung relay's children as away, not exactly them.
  const table = banyan(["topology", "status", topo]);
  const row = new RegExp(`^0\\s+r1\\s+7\\s+6\\s+1\\s+0\\s+(\\d+)\\s+\\d+\\s+\\d+$`, "m").exec(table.stdout);
  t.ok(row !== null && Number(row[1]) >= children.length, `the status table: 6 of 7 up, 1 down, 0 unknown, at least ${children.length} away\n${table.stdout}`);
  t.match(table.stdout, /down: n2/);

  agents.get(hung)!.proc.kill("SIGCONT");
  t.ok(await eventually(() => {
    const s = status(topo).trees[0]!;
    return s.up === 7 && s.away_nodes.length === 0;
  }, 30_000, 250), "after SIGCONT it rejoins, and its children move back under it");
  t.equal(banyan(["topology", "status", topo]).status, 0);
});

t.test("overflow - a relay whose parent is throttled drops its oldest deltas, the root asks for keyframes, and the values end exact", async (t) => {
  const BASE = 29400;
  const cluster = await startCluster({
    nodes: "n[1-7]",
    roots: "r1",
    trees: 1,
    basePort: BASE,
    series: 300,
    changeRate: 0.5,
    intervalMs: 250,
    startRoots: false,
    agentConfig: { ackTimeoutMs: 120_000, maxQueuedFrames: 6, healAfterMs: 60_000 },
  });
  const topo = join(dir, "overflow.json");
  const { writeTopologyFile } = await import("../../src/topology/topology-file.js");
  writeTopologyFile(topo, cluster.topology);
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--set", "intervalMs=250", "--set", "deadAfterMs=60000", "--set", "resyncIntervalMs=200"]);
  t.teardown(async () => {
    root.proc.kill("SIGCONT");
    await cluster.stop();
    await root.stop();
  });
  const page = (): Promise<string> => httpText(`http://127.0.0.1:${BASE + 1}/metrics`).then((r) => r.text);
  t.ok(await eventually(async () => ((await page()).match(/^banyan_node_up\{.*\} 1$/gm) ?? []).length === 7, 30_000, 250), "7 up");

  // Throttle: the root process stops reading; HTTP/2 flow control fills and the relay's queue overflows.
  root.proc.kill("SIGSTOP");
  const n1 = cluster.agents.get("n1")!;
  const dropped = async (): Promise<number> => (await n1.registry.getSingleMetric("banyan_uplink_dropped_frames_total")!.get()).values[0]?.value ?? 0;
  // Only deltas pile up now (no relay asks for keyframes on its own), so the buffers fill slower than they did.
  t.ok(await eventually(async () => (await dropped()) > 3, 90_000, 200), "the relay under the root dropped deltas");
  t.comment(`dropped ${await dropped()} frames while the root was stopped`);
  root.proc.kill("SIGCONT");

  // Stop the values moving, then every value at the root must be exactly what the agents hold.
  for (const s of cluster.sources.values()) s.frozen = true;
  const rules = new PrecisionRules(DEFAULT_PRECISION_RULES);
  const exact = async (): Promise<string[]> => {
    const text = await page();
    const problems: string[] = [];
    for (const [name, src] of cluster.sources) {
      const latest = [...src.truth.values()].at(-1)!;
      for (const [key, { def, value }] of latest) {
        const m = /^([^{]+)(?:\{(.*)\})?$/.exec(key)!;
        const sorted = `${m[1]}{${[...(m[2] ?? "").split(",").filter(Boolean), 'job="synthetic"'].sort().join(",")},instance="${name}"}`;
        const found = text.split("\n").find((l) => l.startsWith(sorted + " "));
        if (found === undefined) {
          problems.push(`${name} ${key}: missing`);
          continue;
        }
        const held = Number(found.slice(found.lastIndexOf(" ") + 1));
        // Each series within the bound the agent applies to it (counters exact; node_load* 0.01 absolute, not 1 %).
        const p = rules.resolve(def);
        const ok = def.type === SeriesType.Counter ? held === value : Math.abs(held - value) <= Math.max(p.relative * Math.abs(value), p.absolute);
        if (!ok) problems.push(`${name} ${key}: ${held} vs ${value}`);
      }
    }
    return problems;
  };
  let last: string[] = [];
  const ok = await eventually(async () => (last = await exact()).length === 0, 30_000, 500);
  t.ok(ok, `every counter at the root is exactly the agent's after the resync${ok ? "" : `: ${last.slice(0, 5).join("; ")}`}`);
  const keys = Number(/^banyan_root_frames_applied_total\{kind="key"\} (\d+)$/m.exec(await page())?.[1] ?? 0);
  t.ok(keys > 7, `the gaps were repaired by keyframes (${keys} applied, 7 at start)`);
});
