import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { parseExposition, type ParsedSample } from "../../src/series/text-parser.js";
import { SeriesType } from "../../src/series/series-def.js";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 29600;
const NE_PORT = BASE + 50;
/** node_exporter's and Prometheus' own metrics: not the node's. */
const SELF = /^(go_|process_|promhttp_|node_scrape_|node_exporter_|node_textfile_)/;

type Page = Map<string, ParsedSample[]>;
const familiesOf = (text: string): Page => {
  const out: Page = new Map();
  for (const s of parseExposition(text).samples) {
    if (SELF.test(s.name) || s.name.startsWith("banyan_")) continue;
    const list = out.get(s.name) ?? [];
    list.push(s);
    out.set(s.name, list);
  }
  return out;
};
const labelKey = (s: ParsedSample): string =>
  Object.entries(s.labels)
    .filter(([k]) => k !== "job" && k !== "instance")
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

t.test("parity - Banyan's agent and the real node_exporter 1.5 agree on every family both produce", async (t) => {
  const nodeExporter = requireProgram("prometheus-node-exporter");
  const dir = mkdtempSync(join(tmpdir(), "banyan-parity-"));
  const topo = join(dir, "t.json");
  t.equal(banyan(["topology", "generate", "--nodes", "n1", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]).status, 0);
  const ne = startProcess(nodeExporter, [`--web.listen-address=127.0.0.1:${NE_PORT}`, "--no-collector.systemd"]);
  const root = startBanyan(["root", "--topology", topo, "--name", "r1"]);
  const agent = startBanyan(["agent", "--topology", topo, "--name", "n1"]);
  t.teardown(async () => {
    await agent.stop();
    await root.stop();
    await ne.stop();
  });
  const rootUrl = `http://127.0.0.1:${BASE + 1}/metrics`;
  t.ok(await eventually(async () => (await httpText(rootUrl)).text.includes('node_cpu_seconds_total{cpu="0",job="node",mode="idle",instance="n1"}'), 30_000), "the agent's series at the root");
  t.ok(await eventually(async () => (await httpText(`http://127.0.0.1:${NE_PORT}/metrics`)).status === 200, 10_000), "node_exporter up");
  await sleep(2000);

  const snapshot = async (): Promise<[Page, Page]> => {
    const [a, b] = await Promise.all([httpText(`http://127.0.0.1:${NE_PORT}/metrics`), httpText(rootUrl)]);
    return [familiesOf(a.text), familiesOf(b.text)];
  };
  const [ne1, bn1] = await snapshot();
  const t1 = Date.now();

  // Families: which of node_exporter's Banyan produces, and with the same label sets.
  const both = [...ne1.keys()].filter((f) => bn1.has(f));
  const missing = [...ne1.keys()].filter((f) => !bn1.has(f));
  const extra = [...bn1.keys()].filter((f) => !ne1.has(f));
  const neSeries = [...ne1.values()].reduce((n, l) => n + l.length, 0);
  const bnSeries = both.reduce((n, f) => n + bn1.get(f)!.length, 0);
  t.comment(`node_exporter: ${ne1.size} families, ${neSeries} series; Banyan produces ${both.length} of those families (${bnSeries} series)`);
  t.comment(`not produced: ${missing.join(" ")}`);
  t.comment(`Banyan only: ${extra.join(" ")}`);
  t.ok(both.length >= 200, `${both.length} families in common`);
  const labelProblems: string[] = [];
  for (const f of both) {
    const a = new Set(ne1.get(f)!.map(labelKey));
    const b = new Set(bn1.get(f)!.map(labelKey));
    const onlyNe = [...a].filter((k) => !b.has(k));
    const onlyBn = [...b].filter((k) => !a.has(k));
    if (onlyNe.length > 0 || onlyBn.length > 0) labelProblems.push(`${f}: node_exporter only ${JSON.stringify(onlyNe.slice(0, 3))}, Banyan only ${JSON.stringify(onlyBn.slice(0, 3))}`);
  }
  t.same(labelProblems, [], "the same label sets in every common family");

  // Gauges: the same value within the bound, allowing for the two reads not being the same instant.
  // Counters: the same rate over the same window.
  await sleep(6000);
  const [ne2, bn2] = await snapshot();
  const seconds = (Date.now() - t1) / 1000;
  const valueProblems: string[] = [];
  let gauges = 0;
  let counters = 0;
  for (const f of both) {
    for (const s of ne2.get(f)!) {
      const k = labelKey(s);
      const b = bn2.get(f)?.find((x) => labelKey(x) === k);
      if (b === undefined) continue;
      if (s.type === SeriesType.Counter) {
        const a1 = ne1.get(f)!.find((x) => labelKey(x) === k)?.value;
        const b1 = bn1.get(f)?.find((x) => labelKey(x) === k)?.value;
        if (a1 === undefined || b1 === undefined) continue;
        counters++;
        const ra = (s.value - a1) / seconds;
        const rb = (b.value - b1) / seconds;
        if (Math.abs(ra - rb) > 0.2 * Math.abs(ra) + 2) valueProblems.push(`${f}{${k}} rate ${rb.toFixed(3)}/s vs node_exporter ${ra.toFixed(3)}/s`);
      } else {
        gauges++;
        // 1 % bound, 0.5 °C / 0.5 s / 0.01 for temperatures, times and load, plus what moves within ~1 s.
        const bound = Math.max(0.01 * Math.abs(s.value), /celsius|_seconds$/.test(f) ? 0.5 : 0.01) + 0.05 * Math.abs(s.value) + 2;
        if (Math.abs(s.value - b.value) > bound) valueProblems.push(`${f}{${k}} ${b.value} vs node_exporter ${s.value}`);
      }
    }
  }
  t.comment(`compared ${gauges} gauges and ${counters} counter rates`);
  t.same(valueProblems.slice(0, 15), [], "gauges within the bound, counter rates alike");
});
