import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startBanyan, type Started } from "../fixtures/processes.js";

const dir = mkdtempSync(join(tmpdir(), "banyan-daemons-"));
const topo = join(dir, "local.json");
const BASE = 29000;

t.before(() => {
  const gen = banyan(["topology", "generate", "--nodes", "n[1-7]", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]);
  if (gen.status !== 0) throw new Error(gen.stderr);
});

t.test("daemons CLI - an operator starts a root and seven agents; every node shows up; SIGHUP reloads; SIGTERM exits 0", async (t) => {
  const rootCfg = join(dir, "root.yaml");
  writeFileSync(rootCfg, "intervalMs: 500\n");
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--config", rootCfg]);
  const agents: Started[] = [];
  t.teardown(async () => {
    for (const a of agents) await a.stop();
    await root.stop();
  });
  for (let k = 1; k <= 7; k++) {
    const source = k === 1 ? [] : ["--source", "synthetic", "--set", "synthetic.series=50"];
    agents.push(startBanyan(["agent", "--topology", topo, "--name", `n${k}`, ...source, "--set", "intervalMs=500"]));
  }
  const http = `http://127.0.0.1:${BASE + 1}`;
  t.ok(await eventually(async () => (await httpText(`${http}/-/ready`)).status === 200, 20_000), "root ready");
  const allUp = async (): Promise<boolean> => ((await httpText(`${http}/metrics`)).text.match(/^banyan_node_up\{instance="n\d",root="r1"\} 1$/gm) ?? []).length === 7;
  if (!t.ok(await eventually(allUp, 30_000), "all seven nodes up at the root")) t.comment(root.output());
  t.match(root.output(), /root r1 ready: trees on port 29000, \/metrics on port 29001/, "the root logs one ready line naming its ports");
  t.match(root.output(), new RegExp(`config: ${rootCfg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(from --config\\)`), "it logs which config file it read, and why that one");
  t.match(agents[0]!.output(), /config: \/dev\/null \(from \$BANYAN_CONFIG\)/, "a test's agent reads no file of the machine's ($BANYAN_CONFIG=/dev/null)");
  t.match(agents[0]!.output(), /node n1 ready: relays 2 children on port 29002, parent r1/, "an interior agent names its port and parent");
  t.match(agents[6]!.output(), /node n7 ready: leaf, parent n\d/);
  const page = (await httpText(`${http}/metrics`)).text;
  t.match(page, /^node_cpu_seconds_total\{cpu="0",job="node",mode="idle",instance="n1"\} [\d.]+$/m, "the procfs agent's real cpu seconds");
  t.match(page, /^node_memory_MemTotal_bytes\{job="node",instance="n1"\} \d+$/m);
  t.match(page, /^node_load1\{job="node",instance="n1"\} [\d.]+$/m);
  t.notMatch(page, /^cluster:/m, "no aggregates yet");

  writeFileSync(rootCfg, "intervalMs: 500\naggregates:\n  - {record: 'cluster:node_load1:max', expr: max, metric: node_load1}\n");
  root.proc.kill("SIGHUP");
  t.ok(await eventually(async () => /^cluster:node_load1:max [\d.]+$/m.test((await httpText(`${http}/metrics`)).text), 10_000), "SIGHUP loaded the new aggregate");

  const gz = await fetch(`${http}/metrics`, { headers: { "accept-encoding": "gzip" } });
  t.equal(gz.headers.get("content-encoding"), "gzip", "gzip when asked");
  t.equal((await httpText(`${http}/-/healthy`)).status, 200);
  t.equal((await httpText(`${http}/nope`)).status, 404);

  for (const a of agents.splice(0)) t.equal(await a.stop("SIGTERM"), 0, "an agent drains and exits 0 on SIGTERM");
  t.equal(await root.stop("SIGTERM"), 0, "the root exits 0 on SIGTERM");
});

t.test("daemons CLI - a bad config or name exits 2 with what, where and what was expected", async (t) => {
  const bad = banyan(["root", "--topology", topo, "--name", "r1", "--set", "deadAfterMs=-5", "--set", "bogus=1"]);
  t.equal(bad.status, 2);
  t.match(bad.stderr, /deadAfterMs: got -5, .*expected/);
  t.match(bad.stderr, /unknown key "bogus"/);
  const yaml = join(dir, "broken.yaml");
  writeFileSync(yaml, "source: [unclosed\n");
  const broken = banyan(["agent", "--topology", topo, "--name", "n1", "--config", yaml]);
  t.equal(broken.status, 2);
  t.match(broken.stderr, /broken\.yaml:\d+:\d+: not YAML/);
  const ghost = banyan(["agent", "--topology", topo, "--name", "ghost"]);
  t.equal(ghost.status, 2);
  t.match(ghost.stderr, /node "ghost" is not in the topology/);
  const rootAsNode = banyan(["agent", "--topology", topo, "--name", "r1"]);
  t.match(rootAsNode.stderr, /it is a root: run `banyan root`/);
  const noTopo = banyan(["relay", "--name", "n1"], undefined);
  t.equal(noTopo.status, 2);
  t.match(noTopo.stderr, /no topology/);
  const source = banyan(["agent", "--topology", topo, "--name", "n1", "--source", "gpu"]);
  t.equal(source.status, 2);
  t.match(source.stderr, /Allowed choices are procfs, synthetic/);
});

t.test("daemons CLI - the mistakes a new admin makes each say what and where, exit 2, no stack trace", async (t) => {
  const level = banyan(["root", "--topology", topo, "--name", "r1", "--set", "log.level=verbose"]);
  t.equal(level.status, 2);
  t.match(level.stderr, /^banyan: --set log\.level: log\.level: got "verbose", expected one of "trace"\|"debug"\|"info"/m);
  t.notMatch(level.stderr, /internal error|\n\s+at /, "no stack trace");
  const demoLevel = banyan(["demo", "--log-level", "verbose"]);
  t.not(demoLevel.status, 0);
  t.match(demoLevel.stderr, /Allowed choices are trace, debug, info/);
  const yaml = join(dir, "plain.yaml");
  writeFileSync(yaml, "intervalMs: 500\n");
  const blamed = banyan(["root", "--topology", topo, "--name", "r1", "--config", yaml, "--set", "foo=1"]);
  t.equal(blamed.status, 2);
  t.match(blamed.stderr, /--set foo: unknown key "foo"/, "a --set mistake is blamed on --set, not on the file");
  t.notMatch(blamed.stderr.split("\n").find((l) => l.startsWith("banyan:")) ?? "", /plain\.yaml/, "the error line does not name the file (the log line before it says which file was read)");
  const unnamed = banyan(["agent", "--topology", topo]);
  t.equal(unnamed.status, 2);
  t.match(unnamed.stderr, /agent "[^"]+" \(the name comes from (this host's short name|\$SLURMD_NODENAME)\) is not in the topology: give its name with --name <name>/);

  // A second root on the same port: Banyan's own message, not grpc-js' "E No address added".
  const root = startBanyan(["root", "--topology", topo, "--name", "r1"]);
  t.teardown(() => root.stop());
  t.ok(await eventually(async () => (await httpText(`http://127.0.0.1:${BASE + 1}/-/healthy`)).status === 200, 15_000), "first root up");
  const second = banyan(["root", "--topology", topo, "--name", "r1"]);
  t.equal(second.status, 2);
  t.match(second.stderr, /cannot listen on 127\.0\.0\.1:\d+: address already in use/);
  t.notMatch(second.stderr, /No address added/);
  await root.stop();
  const status = banyan(["topology", "status", topo, "--timeout-ms", "1000"]);
  t.equal(status.status, 1);
  t.match(status.stdout, /unreachable root r1: 127\.0\.0\.1:\d+: connection refused/, "why a root is unreachable");
});

/** Every key of a zod object schema, nested objects and arrays of objects included. */
function keysOf(schema: unknown, depth = 0): string[] {
  let s = schema as { shape?: Record<string, unknown>; _zod?: { def: { innerType?: unknown; element?: unknown; type?: string } } };
  for (let k = 0; k < 5 && s._zod?.def.innerType !== undefined; k++) s = s._zod.def.innerType as typeof s;
  if (s._zod?.def.type === "array") return keysOf(s._zod.def.element, depth);
  if (s.shape === undefined || depth > 3) return [];
  return Object.entries(s.shape).flatMap(([k, v]) => [k, ...keysOf(v, depth + 1)]);
}

t.test("daemons CLI - each daemon's --help names every config key its schema takes", async (t) => {
  const { agentConfigSchema } = await import("../../src/agent/agent-config.js");
  const { rootConfigSchema } = await import("../../src/root/root-config.js");
  const { relayConfigSchema } = await import("../../src/relay/relay-config.js");
  for (const [daemon, schema] of [["agent", agentConfigSchema], ["root", rootConfigSchema], ["relay", relayConfigSchema]] as const) {
    const help = banyan([daemon, "--help"]).stdout;
    const keys = [...new Set(keysOf(schema))];
    t.ok(keys.length > 10, `${daemon}: ${keys.length} keys`);
    t.same(keys.filter((k) => !new RegExp(`\\b${k}\\b`).test(help)), [], `${daemon} --help names them all`);
  }
});

t.test("daemons CLI - dedicated relays: generate --relays puts them under the roots; banyan relay runs as the README shows and counts as up", async (t) => {
  const RB = 29300;
  const rtopo = join(dir, "relays.json");
  const gen = banyan(["topology", "generate", "--nodes", "c[1-6]", "--roots", "r1", "--relays", "relay[01-02]", "--trees", "1", "--local", String(RB), "-o", rtopo]);
  t.equal(gen.status, 0, gen.stderr);
  t.match(gen.stderr, /6 nodes and 2 relays in 1 trees/);
  const check = banyan(["topology", "check", rtopo]);
  t.equal(check.status, 0, check.stdout);
  const procs: Started[] = [startBanyan(["root", "--topology", rtopo, "--name", "r1"])];
  t.teardown(async () => {
    for (const p of procs.reverse()) await p.stop();
  });
  for (const r of ["relay01", "relay02"]) procs.push(startBanyan(["relay", "--topology", rtopo, "--name", r]));
  for (let k = 1; k <= 6; k++) procs.push(startBanyan(["agent", "--topology", rtopo, "--name", `c${k}`, "--source", "synthetic", "--set", "synthetic.series=20"]));
  const status = async (): Promise<string> => banyan(["topology", "status", rtopo]).stdout;
  t.ok(await eventually(async () => /total: 8 of 8 nodes up, 0 away/.test(await status()), 30_000, 500), "every node and both relays up");
  const page = (await httpText(`http://127.0.0.1:${RB + 1}/metrics`)).text;
  t.match(page, /^banyan_node_parent_info\{job="relay",parent="r1",planned="r1",instance="relay01"\} 1$/m, "a relay's own place in the tree");
  t.notMatch(page, /node_cpu_seconds_total\{[^}]*instance="relay01"/, "and nothing of its host");
  t.match(page, /instance="c6"/);
  const wrong = banyan(["agent", "--topology", rtopo, "--name", "relay01"]);
  t.equal(wrong.status, 2);
  t.match(wrong.stderr, /relay01 is a dedicated relay: run `banyan relay --name relay01`/);
});
