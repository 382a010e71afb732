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

/**
 * A counter's increase through Banyan over a window agrees with node_exporter's: the agent's value
 * read at T is the node's at some instant of [T − LAG, T] (it samples at its own phase), so its
 * increase from T1 to T2 lies between node_exporter's from T1 to T2 − LAG (lo) and from T1 − LAG to
 * T2 (hi); 20 % and 2/s beyond those for the reads' own jitter. A burst of disk writes in the lag
 * moves both sides alike; a wrong unit or factor falls outside every time.
 */
const LAG_MS = 1500;
/**
 * The run queue at one instant: each reader counts itself, and under load it moves within a
 * millisecond, so two readers an instant apart may differ in every read. Label sets only.
 */
const RUN_QUEUE = new Set(["node_procs_running", "node_procs_blocked"]);
const rateAgrees = (lo: number, hi: number, dBn: number, seconds: number): boolean => dBn >= lo - 0.2 * Math.abs(lo) - 2 * seconds && dBn <= hi + 0.2 * Math.abs(hi) + 2 * seconds;

/** The 1 % bound (0.5 °C / 0.5 s for temperatures and times), plus what moves between two reads ~1 s apart. */
const gaugeAgrees = (ne: number, bn: number, family: string): boolean =>
  Math.abs(ne - bn) <= Math.max(0.01 * Math.abs(ne), /celsius|_seconds$/.test(family) ? 0.5 : 0.01) + 0.05 * Math.abs(ne) + 2;
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

  /** node_exporter and the root read together, and node_exporter LAG_MS before (see rateAgrees). */
  const snapshot = async (): Promise<[Page, Page, Page]> => {
    const early = await httpText(`http://127.0.0.1:${NE_PORT}/metrics`);
    await sleep(LAG_MS);
    const [a, b] = await Promise.all([httpText(`http://127.0.0.1:${NE_PORT}/metrics`), httpText(rootUrl)]);
    return [familiesOf(a.text), familiesOf(b.text), familiesOf(early.text)];
  };
  const [ne1, bn1, neEarly1] = await snapshot();
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
  t.same(missing, [], `every node_exporter family produced (${both.length} in common)`);
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
  const [ne2, bn2, neEarly2] = await snapshot();
  const seconds = (Date.now() - t1) / 1000;
  const valueProblems: string[] = [];
  const suspects = new Set<string>();
  const counterSuspects = new Map<string, [number, number, number]>();
  let gauges = 0;
  let counters = 0;
  for (const f of both) {
    for (const s of ne2.get(f)!) {
      const k = labelKey(s);
      const b = bn2.get(f)?.find((x) => labelKey(x) === k);
      if (b === undefined) continue;
      if (s.type === SeriesType.Counter) {
        const a1 = ne1.get(f)!.find((x) => labelKey(x) === k)?.value;
        const e1 = neEarly1.get(f)?.find((x) => labelKey(x) === k)?.value;
        const e2 = neEarly2.get(f)?.find((x) => labelKey(x) === k)?.value;
        const b1 = bn1.get(f)?.find((x) => labelKey(x) === k)?.value;
        if (a1 === undefined || b1 === undefined || e1 === undefined || e2 === undefined) continue;
        counters++;
        if (!rateAgrees(e2 - a1, s.value - e1, b.value - b1, seconds)) counterSuspects.set(`${f}\u0000${k}`, [a1, b1, e1]);
      } else if (!RUN_QUEUE.has(f)) {
        gauges++;
        if (!gaugeAgrees(s.value, b.value, f)) suspects.add(`${f}\u0000${k}`);
      }
    }
  }
  // A gauge that moves within a second (TCP memory pages, dirty bytes) can disagree in one pair of
  // reads, and a bursty counter (disk writes) over one window, since the agent's reading may lag
  // node_exporter's by a sample; a wrong unit or factor disagrees every time. Read the suspects
  // again, up to 3 times (counters over a window that grows each time).
  for (let attempt = 0; attempt < 3 && (suspects.size > 0 || counterSuspects.size > 0); attempt++) {
    await sleep(1000);
    const [a, b, early] = await snapshot();
    const window = (Date.now() - t1) / 1000;
    for (const [key, [a1, b1, e1]] of [...counterSuspects]) {
      const [f, k] = key.split("\u0000") as [string, string];
      const x = a.get(f)?.find((y) => labelKey(y) === k);
      const y = b.get(f)?.find((z) => labelKey(z) === k);
      const e = early.get(f)?.find((z) => labelKey(z) === k);
      if (x !== undefined && y !== undefined && e !== undefined && rateAgrees(e.value - a1, x.value - e1, y.value - b1, window)) counterSuspects.delete(key);
    }
    for (const key of [...suspects]) {
      const [f, k] = key.split("\u0000") as [string, string];
      const x = a.get(f)?.find((y) => labelKey(y) === k);
      const y = b.get(f)?.find((z) => labelKey(z) === k);
      if (x !== undefined && y !== undefined && gaugeAgrees(x.value, y.value, f)) suspects.delete(key);
    }
  }
  for (const key of suspects) valueProblems.push(`gauge ${key.replace("\u0000", "{")}} disagreed in 4 reads`);
  for (const key of counterSuspects.keys()) valueProblems.push(`counter ${key.replace("\u0000", "{")}} rate disagreed over 4 windows`);
  t.comment(`compared ${gauges} gauges and ${counters} counter rates`);
  t.same(valueProblems.slice(0, 15), [], "gauges within the bound, counter rates alike");
});
