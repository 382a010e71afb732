import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess, type Started } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 30400;
const dir = mkdtempSync(join(tmpdir(), "banyan-remote-write-vm-"));
t.setTimeout(200_000);

/**
 * The same root writing to a real VictoriaMetrics (Debian's 1.79, /api/v1/write): every node's
 * series arrive with the page's labels and values, and a node that stops is stale there too. Asked
 * for zstd, the root finds this VictoriaMetrics does not take it (its probe answers 400) and sends snappy.
 */
t.test("remote_write - a real VictoriaMetrics gets every node's series and their staleness markers", async (t) => {
  const vm = requireProgram("victoria-metrics");
  const topo = join(dir, "topology.json");
  const gen = banyan(["topology", "generate", "--nodes", "v[1-5]", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]);
  t.equal(gen.status, 0, gen.stderr);
  const vmPort = BASE + 90;
  const procs: Started[] = [];
  t.teardown(async () => {
    for (const p of procs.reverse()) await p.stop();
  });
  // latencyOffset 0: answer with what was just written (the default hides the last 30 s).
  procs.push(startProcess(vm, [`-storageDataPath=${join(dir, "vm")}`, `-httpListenAddr=127.0.0.1:${vmPort}`, "-search.latencyOffset=0s", "-search.disableCache"]));
  const rootCfg = join(dir, "root.yaml");
  writeFileSync(rootCfg, `intervalMs: 1000\ndeadAfterMs: 3000\nremoteWrite:\n  - url: http://127.0.0.1:${vmPort}/api/v1/write\n    compression: zstd\n    refreshMs: 3000\n    queue:\n      batchDeadlineMs: 200\n      maxBackoffMs: 1000\n`);
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--config", rootCfg]);
  procs.push(root);
  const agents = new Map<string, Started>();
  for (let k = 1; k <= 5; k++) {
    const a = startBanyan(["agent", "--topology", topo, "--name", `v${k}`, "--source", "synthetic", "--set", "synthetic.series=80", "--set", "intervalMs=1000"]);
    agents.set(`v${k}`, a);
    procs.push(a);
  }
  const query = async (q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
    const r = await httpText(`http://127.0.0.1:${vmPort}/api/v1/query?query=${encodeURIComponent(q)}`);
    return r.status === 200 ? (JSON.parse(r.text) as { data: { result: [] } }).data.result : [];
  };
  const count = async (q: string): Promise<number> => Number((await query(q))[0]?.value[1] ?? 0);
  t.ok(await eventually(async () => (await count("count(node_load1)")) === 5, 60_000, 500), "node_load1 of all 5 nodes in VictoriaMetrics");
  // compression: zstd — this VictoriaMetrics (1.79) answers the probe with 400: it takes only snappy.
  t.match(root.output(), /the receiver does not take zstd/, "zstd asked for, the packaged VictoriaMetrics refuses it, snappy used");

  const page = (await httpText(`http://127.0.0.1:${BASE + 1}/metrics`)).text;
  const pageLines = page.split("\n").filter((l) => /^node_\w+\{.*instance="v\d"/.test(l));
  t.ok(await eventually(async () => (await count('count({__name__=~"node_.+"})')) === pageLines.length, 20_000, 500), `all ${pageLines.length} node_ series of the page`);
  // (The synthetic nodes move it now and then: both agree once both have the newest value.)
  for (let k = 1; k <= 5; k++) {
    const agree = async (): Promise<boolean> => {
      const line = (await httpText(`http://127.0.0.1:${BASE + 1}/metrics`)).text.split("\n").find((l) => l.startsWith("node_boot_time_seconds{") && l.includes(`instance="v${k}"`));
      return Number((await query(`node_boot_time_seconds{instance="v${k}"}`))[0]?.value[1]) === Number(line?.slice(line.lastIndexOf(" ") + 1));
    };
    t.ok(await eventually(agree, 10_000, 500), `node_boot_time_seconds of v${k}: the page's value`);
  }
  await agents.get("v5")!.stop();
  t.ok(await eventually(async () => (await count("count(node_load1)")) === 4, 30_000, 500), "v5's series stale in VictoriaMetrics once it is down");
});
