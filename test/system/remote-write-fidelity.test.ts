import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess, type Started } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 28800;
const dir = mkdtempSync(join(tmpdir(), "banyan-rw-fidelity-"));
t.setTimeout(240_000);

/**
 * The same cluster seen two ways by two real Prometheus servers: one scrapes the root every second
 * (as today), the other only receives the root's change-only remote_write (changes plus a refresh
 * every 5 s). For every node, rate() over its CPU counters and its gauges at one instant agree:
 * remote_write is a replacement for the scrape, not an approximation of it.
 */
t.test("remote_write - rate() over counters and instant gauges at a remote-written Prometheus agree with a scraping one, for every node", async (t) => {
  const prometheus = requireProgram("prometheus");
  const topo = join(dir, "topology.json");
  t.equal(banyan(["topology", "generate", "--nodes", "f[1-6]", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]).status, 0);
  const procs: Started[] = [];
  t.teardown(async () => {
    for (const p of procs.reverse()) await p.stop();
  });
  const rxPort = BASE + 90;
  const scrapePort = BASE + 91;
  const rootHttp = `127.0.0.1:${BASE + 1}`;
  writeFileSync(join(dir, "rx.yml"), "global:\n  scrape_interval: 15s\nscrape_configs: []\n");
  writeFileSync(join(dir, "scrape.yml"), `global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: banyan\n    honor_labels: true\n    static_configs:\n      - targets: ["${rootHttp}"]\n`);
  procs.push(startProcess(prometheus, [`--config.file=${join(dir, "rx.yml")}`, `--storage.tsdb.path=${join(dir, "rx")}`, `--web.listen-address=127.0.0.1:${rxPort}`, "--web.enable-remote-write-receiver"]));
  procs.push(startProcess(prometheus, [`--config.file=${join(dir, "scrape.yml")}`, `--storage.tsdb.path=${join(dir, "scrape")}`, `--web.listen-address=127.0.0.1:${scrapePort}`]));
  writeFileSync(join(dir, "root.yaml"), `remoteWrite:\n  - url: http://127.0.0.1:${rxPort}/api/v1/write\n    refreshMs: 5000\n    rootSeriesIntervalMs: 2000\n    queue: {batchDeadlineMs: 200}\naggregates:\n  - { record: "cluster:node_load1:avg", expr: avg, metric: node_load1, by: [] }\n`);
  procs.push(startBanyan(["root", "--topology", topo, "--name", "r1", "--config", join(dir, "root.yaml")]));
  for (let k = 1; k <= 6; k++) procs.push(startBanyan(["agent", "--topology", topo, "--name", `f${k}`, "--source", "synthetic", "--set", "synthetic.series=120", "--set", "synthetic.changeRate=0.3"]));

  const query = async (port: number, q: string, time: number): Promise<Map<string, number>> => {
    const r = await httpText(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}&time=${time / 1000}`);
    const out = new Map<string, number>();
    if (r.status !== 200) return out;
    for (const s of (JSON.parse(r.text) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result) {
      const { __name__: _, ...labels } = s.metric;
      out.set(JSON.stringify(Object.entries(labels).sort()), Number(s.value[1]));
    }
    return out;
  };
  t.ok(await eventually(async () => (await query(scrapePort, "count(node_load1)", Date.now())).values().next().value === 6 && (await query(rxPort, "count(node_load1)", Date.now())).values().next().value === 6, 90_000, 1000), "both see the 6 nodes");
  // A 20 s rate window that ends 15 s ago, wholly after both saw every node.
  await sleep(35_000);
  // An instant both have settled past (on a loaded machine the written samples may arrive seconds late).
  const at = Date.now() - 15_000;

  // The written samples carry the node's sample time; a scrape stamps the root's value with the time
  // of the scrape, a second or two later (more on a loaded machine). So the scraped value at an
  // instant is a value the written series held at that instant or in the 6 s before it.
  const compare = async (q: string, ok: (scraped: number, lo: number, hi: number) => boolean): Promise<{ checked: number; off: string[] }> => {
    const scraped = await query(scrapePort, q, at);
    // Every 250 ms: a value the root held for one 1 s tick must not fall between two probes.
    const written = await Promise.all(Array.from({ length: 25 }, (_, k) => query(rxPort, q, at - k * 250)));
    const off: string[] = [];
    for (const [k, a] of scraped) {
      const held = written.map((w) => w.get(k)).filter((v): v is number => v !== undefined);
      if (held.length === 0) off.push(`${k}: missing at the remote-written Prometheus`);
      else if (!ok(a, Math.min(...held), Math.max(...held))) off.push(`${k}: scraped ${a}, remote-written ${held.join(", ")}`);
    }
    return { checked: scraped.size, off };
  };
  // Counters are exact on the wire: the scraped value is one the written series held.
  const counters = await compare("node_cpu_seconds_total", (a, lo, hi) => a >= lo && a <= hi);
  t.ok(counters.checked >= 6 * 4, `${counters.checked} CPU counters compared`);
  t.same(counters.off, [], "every node's CPU counters: the scraped value is the written one (exact)");
  // rate() over 20 s: the same counter values, but Prometheus extrapolates to the window's edges
  // from where its samples fall (every second when scraped, at each change or refresh when
  // written), which moves a rate by up to about the sample spacing over the window: 5 s of 20, 25 % here.
  const rates = await compare("rate(node_cpu_seconds_total[20s])", (a, lo, hi) => a >= lo - 0.25 * Math.abs(lo) - 1e-3 && a <= hi + 0.25 * Math.abs(hi) + 1e-3);
  t.same(rates.off, [], "rate() agrees for every node's CPU counters");
  // Gauges: the same values (the root's), so within the precision bound of 1 %.
  const gauges = await compare('{__name__=~"node_.+", __name__!~".*(_total|_bucket|_count|_sum)"}', (a, lo, hi) => a >= lo - 0.01 * Math.abs(lo) - 1e-9 && a <= hi + 0.01 * Math.abs(hi) + 1e-9);
  t.ok(gauges.checked >= 6 * 5, `${gauges.checked} gauges compared`);
  t.same(gauges.off, [], "instant gauges agree for every node");

  // The root's own series (what the generated dashboards read besides the nodes' series): every
  // family of them that the scraping Prometheus has, the remote-written one has too, and each
  // node's up and last-seen per node.
  const families = async (port: number): Promise<string[]> => {
    const r = await httpText(`http://127.0.0.1:${port}/api/v1/label/__name__/values?match[]=${encodeURIComponent('{__name__=~"banyan_.+|cluster:.+"}')}&start=${(Date.now() - 10_000) / 1000}`);
    return (JSON.parse(r.text) as { data: string[] }).data.sort();
  };
  const scrapedFamilies = await families(scrapePort);
  t.ok(scrapedFamilies.length >= 20, `${scrapedFamilies.length} families of the root's own series scraped`);
  let missing: string[] = [];
  await eventually(async () => {
    const written = new Set(await families(rxPort));
    missing = scrapedFamilies.filter((f) => !written.has(f));
    return missing.length === 0;
  }, 10_000, 1000);
  t.same(missing, [], "the remote-written Prometheus holds every family of the root's own series the scraping one holds");
  const up = await query(rxPort, 'banyan_node_up{root="r1"}', Date.now());
  t.equal([...up.values()].filter((v) => v === 1).length, 6, "banyan_node_up of each node, 1, written");
  const latency = await query(rxPort, 'count(banyan_root_frame_latency_seconds_bucket{instance="r1"})', Date.now());
  t.ok((latency.values().next().value ?? 0) > 0, "the root's own metrics carry instance=<the root's name>");
});
