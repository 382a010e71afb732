import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually, sleep } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

/**
 * Grafana's Node Exporter Full (1860), every panel expression, evaluated by the real Prometheus once
 * on the real node_exporter's series and once on the same machine's series through a Banyan agent
 * and root, at several instants. Each expression lands in one class:
 *   agree     every series both answer is within the bound at every instant;
 *   noise     some instants differ, but not all the same way (two targets sampled apart: a burst
 *             counted in one window by one side and in the next by the other); a count of sockets
 *             or running processes one apart is the two observers themselves (OBSERVED);
 *   wrong     some series differs beyond the bound in the same direction at every instant, and
 *             from node_exporter's values over the 2 s before each instant too (the span a value
 *             read through the tree can come from); or Banyan holds one value at every instant, off
 *             node_exporter's at each, while node_exporter's moved by over 4 times the bound (frozen);
 *   missing   node_exporter answers, Banyan returns nothing;
 *   partial   Banyan answers, but lacks some series node_exporter has (a device, a mode);
 *   self      describes the exporter's own process (process_*, node_scrape_collector_*): Banyan's
 *             answer is the agent's, by design; compared only for presence;
 *   instant   the run queue at one instant (RUN_QUEUE): compared only for presence;
 *   empty     neither answers on this machine.
 * It fails on any wrong or missing expression. On the same run, the CPU rate over 30 s, available
 * memory and the load are compared with a numeric bound.
 */
const BASE = 31800;
const NE_PORT = BASE + 50;
const PROM_PORT = BASE + 60;
const DASHBOARD = new URL("../fixtures/dashboards/node-exporter-full-1860.json", import.meta.url);
/** How far before an instant node_exporter is also read: the span a Banyan value read then may come from. */
const LAG_S = [1, 2];
/** Grafana's $__rate_interval for a 1 s scrape is 4 s; 5 s keeps five samples in each window. */
const RATE_INTERVAL = "5s";
/**
 * Instants compared, ending a few seconds before now: further apart than the rate window, so each
 * instant's windows are disjoint and one burst seen by one side cannot make every instant disagree.
 */
const INSTANTS = 5;
const STEP_S = 6;

interface Panel {
  readonly title?: string;
  readonly targets?: { readonly expr?: string }[];
  readonly panels?: Panel[];
}

function panelExpressions(dashboard: { panels: Panel[] }): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (panels: readonly Panel[]): void => {
    for (const p of panels) {
      for (const target of p.targets ?? []) if (target.expr && !out.has(target.expr)) out.set(target.expr, p.title ?? "");
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return out;
}

type Vector = Map<string, number>;

const labelKey = (metric: Record<string, string>): string =>
  Object.entries(metric)
    .filter(([k]) => k !== "instance" && k !== "job")
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

async function query(expr: string, timeS: number): Promise<Vector> {
  const url = `http://127.0.0.1:${PROM_PORT}/api/v1/query?query=${encodeURIComponent(expr)}&time=${timeS}`;
  const out: Vector = new Map();
  let body: { status: string; data?: { resultType: string; result: unknown } };
  try {
    body = JSON.parse((await httpText(url)).text) as typeof body;
  } catch {
    return out; // Prometheus not up yet
  }
  if (body.status !== "success" || body.data === undefined) return out;
  if (body.data.resultType === "scalar") {
    out.set("", Number((body.data.result as [number, string])[1]));
    return out;
  }
  for (const r of body.data.result as { metric: Record<string, string>; value: [number, string] }[]) out.set(labelKey(r.metric), Number(r.value[1]));
  return out;
}

/**
 * Counts of live objects the two observers themselves change: node_exporter reads sockstat while
 * it serves the scrape (one socket more), each reader is the running process it counts. One apart
 * is the observer, not the path.
 */
const OBSERVED = /^node_sockstat_\w+\{[^}]*\}$/;
/**
 * The run queue at one instant (node_procs_running, node_procs_blocked): each reader counts itself,
 * and under load the count moves within a millisecond, so two readers an instant apart may differ
 * every time. Compared for presence only, like the exporter's own row.
 */
const RUN_QUEUE = /^node_procs_(running|blocked)\{[^}]*\}$/;

/** Within the bound: 1 % (the agent's gauge precision) plus 1 % for the two targets' sampling, or tiny absolute. */
const within = (ne: number, bn: number, slack: number): boolean => (Number.isNaN(ne) && Number.isNaN(bn)) || Math.abs(ne - bn) <= 0.02 * Math.max(Math.abs(ne), Math.abs(bn)) + slack;

const SELF = /\b(process_\w+|node_scrape_collector_\w+|go_\w+|node_textfile_scrape_error)\b/;

type Class = "agree" | "noise" | "wrong" | "missing" | "partial" | "self" | "instant" | "empty" | "banyan-only";

t.test("dashboard 1860 - every panel expression gives node_exporter's answer through Banyan", async (t) => {
  const nodeExporter = requireProgram("prometheus-node-exporter");
  const prometheus = requireProgram("prometheus");
  const exprs = panelExpressions(JSON.parse(readFileSync(DASHBOARD, "utf8")) as { panels: Panel[] });
  t.ok(exprs.size > 250, `${exprs.size} distinct expressions in the dashboard`);

  const dir = mkdtempSync(join(tmpdir(), "banyan-1860-"));
  const topo = join(dir, "t.json");
  t.equal(banyan(["topology", "generate", "--nodes", "n1", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]).status, 0);
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      "scrape_configs:",
      `  - { job_name: ne, static_configs: [{ targets: ["127.0.0.1:${NE_PORT}"] }] }`,
      `  - { job_name: banyan, honor_labels: true, static_configs: [{ targets: ["127.0.0.1:${BASE + 1}"] }] }`,
      "",
    ].join("\n"),
  );
  const ne = startProcess(nodeExporter, [`--web.listen-address=127.0.0.1:${NE_PORT}`, "--no-collector.systemd"]);
  const root = startBanyan(["root", "--topology", topo, "--name", "r1"]);
  const agent = startBanyan(["agent", "--topology", topo, "--name", "n1"]);
  const prom = startProcess(prometheus, [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${PROM_PORT}`]);
  t.teardown(async () => {
    await Promise.all([agent.stop(), root.stop(), ne.stop(), prom.stop()]);
  });
  const both = async (): Promise<boolean> => (await query('count(node_uname_info{job="ne"}) + count(node_uname_info{job="node",instance="n1"})', Date.now() / 1000)).get("") === 2;
  t.ok(await eventually(both, 40_000, 500), "Prometheus has both targets' series");
  // Enough history for every rate window at the first instant compared, then the instants themselves.
  await sleep((INSTANTS * STEP_S + 8) * 1000);
  const end = Date.now() / 1000 - 3;
  const instants = Array.from({ length: INSTANTS }, (_, i) => end - (INSTANTS - 1 - i) * STEP_S);

  const sides = { ne: { node: `127.0.0.1:${NE_PORT}`, job: "ne" }, bn: { node: "n1", job: "node" } };
  const substitute = (expr: string, s: { node: string; job: string }): string =>
    expr.replaceAll("$__rate_interval", RATE_INTERVAL).replaceAll("$node", s.node).replaceAll("$job", s.job);

  const classes = new Map<Class, string[]>();
  const details: string[] = [];
  const exprList = [...exprs.keys()];
  // A few expressions at a time: 276 × 2 sides × 5 instants queries in all.
  for (let i = 0; i < exprList.length; i += 8) {
    await Promise.all(
      exprList.slice(i, i + 8).map(async (expr) => {
        // node_exporter at each instant and LAG_S before it: Banyan's value read at T is the node's
        // at some moment of that span (the agent samples at its own phase, then the tree carries it).
        const ne = await Promise.all(instants.map((at) => query(substitute(expr, sides.ne), at)));
        const neBefore = await Promise.all(LAG_S.map((lag) => Promise.all(instants.map((at) => query(substitute(expr, sides.ne), at - lag)))));
        const bn = await Promise.all(instants.map((at) => query(substitute(expr, sides.bn), at)));
        const cls = classify(expr, ne, neBefore, bn, details);
        classes.set(cls, [...(classes.get(cls) ?? []), expr]);
      }),
    );
  }
  const count = (c: Class): number => classes.get(c)?.length ?? 0;
  t.comment(`dashboard 1860, ${exprs.size} expressions × ${INSTANTS} instants, ${STEP_S} s apart:`);
  for (const c of ["agree", "noise", "self", "instant", "empty", "banyan-only", "wrong", "partial", "missing"] as const) t.comment(`  ${c.padEnd(12)} ${count(c)}`);
  for (const d of details.slice(0, 40)) t.comment(`  ${d}`);
  t.same(classes.get("missing") ?? [], [], "no expression node_exporter answers and Banyan does not");
  t.same(classes.get("wrong") ?? [], [], "no expression off beyond the bound the same way at every instant");
  t.same(classes.get("partial") ?? [], [], "no expression with series node_exporter has and Banyan lacks");
  t.ok(count("agree") + count("noise") > 150, "most expressions answered alike");

  // Three everyday questions with a numeric bound, on the same run: the CPU rate over 30 s (the
  // history waited for above covers it), available memory and the load.
  const now = Date.now() / 1000;
  const compare = async (expr: (job: string) => string, label: string, bound: (v: number) => number): Promise<void> => {
    const [a, b] = await Promise.all([query(expr("ne"), now), query(expr("node"), now)]);
    t.ok(a.size > 0 && a.size === b.size, `${label}: ${a.size} series each`);
    for (const [key, va] of a) {
      const vb = b.get(key);
      t.ok(vb !== undefined && Math.abs(va - vb) <= bound(va), `${label} {${key}}: node_exporter ${va}, Banyan ${vb}`);
    }
  };
  await compare((job) => `rate(node_cpu_seconds_total{job="${job}"}[30s])`, "rate(node_cpu_seconds_total[30s])", (v) => 0.1 * Math.abs(v) + 0.02);
  await compare((job) => `node_memory_MemAvailable_bytes{job="${job}"}`, "node_memory_MemAvailable_bytes", (v) => 0.03 * Math.abs(v));
  // The load moves at each of the kernel's updates (every 5 s, by up to 8 % of its distance to the
  // count of runnable tasks): two readers a second apart may straddle one, and a busy machine's load
  // then differs by more than any fixed bound (node_exporter 1.53, Banyan 1.23, in one run). Over the
  // same 10 s their values agree: the ranges meet, within the bound.
  const loadBound = (v: number): number => 0.05 * Math.abs(v) + 0.2;
  const over = (fn: "min" | "max", job: string): Promise<Vector> => query(`${fn}_over_time(node_load1{job="${job}"}[10s])`, now);
  const [neLo, neHi, bLo, bHi] = await Promise.all([over("min", "ne"), over("max", "ne"), over("min", "node"), over("max", "node")]);
  t.ok(neLo.size > 0 && neLo.size === bLo.size, `node_load1: ${neLo.size} series each`);
  for (const [key, lo] of neLo) {
    const hi = neHi.get(key) ?? lo;
    const [blo, bhi] = [bLo.get(key), bHi.get(key)];
    t.ok(blo !== undefined && bhi !== undefined && bhi >= lo - loadBound(lo) && blo <= hi + loadBound(hi), `node_load1 over 10 s {${key}}: node_exporter ${lo} to ${hi}, Banyan ${blo} to ${bhi}`);
  }
});

function classify(expr: string, ne: Vector[], neBefore: Vector[][], bn: Vector[], details: string[]): Class {
  const neAnswers = ne.some((v) => v.size > 0);
  const bnAnswers = bn.some((v) => v.size > 0);
  if (!neAnswers) return bnAnswers ? "banyan-only" : "empty";
  if (!bnAnswers) {
    details.push(`missing: ${expr}`);
    return "missing";
  }
  if (SELF.test(expr)) return "self";
  if (RUN_QUEUE.test(expr.trim())) return "instant";
  let noisy = false;
  const slack = OBSERVED.test(expr.trim()) ? 1 : 1e-3;
  const keys = new Set(ne.flatMap((v) => [...v.keys()]));
  const lacking = [...keys].filter((k) => !bn.some((v) => v.has(k)));
  if (lacking.length > 0) {
    details.push(`partial: ${expr}: Banyan lacks {${lacking.slice(0, 3).join("} {")}}${lacking.length > 3 ? ` and ${lacking.length - 3} more` : ""}`);
    return "partial";
  }
  for (const key of keys) {
    const signs: number[] = [];
    let compared = 0;
    for (let i = 0; i < ne.length; i++) {
      const a = ne[i]!.get(key);
      const b = bn[i]!.get(key);
      if (a === undefined || b === undefined) continue;
      compared++;
      if (within(a, b, slack)) continue;
      // Off at T: off the same way from every node_exporter value of the lag before T too, or it is
      // only the sampling offset (a volatile series moved in between).
      const span = [a, ...neBefore.map((v) => v[i]!.get(key)).filter((x): x is number => x !== undefined)];
      if (span.some((x) => within(x, b, slack) || Math.sign(b - x) !== Math.sign(b - a))) {
        signs.push(0);
        continue;
      }
      signs.push(Math.sign(b - a));
    }
    if (compared === 0) continue;
    // Frozen: Banyan holds one value at every instant while node_exporter's moved by several times
    // the bound (a value stuck inside a too-wide precision, never refreshed).
    const held = bn.map((v) => v.get(key)).filter((x): x is number => x !== undefined);
    const truth = ne.map((v) => v.get(key)).filter((x): x is number => x !== undefined);
    const frozen =
      held.length >= 4 &&
      held.every((x) => x === held[0]) &&
      truth.every((x) => !within(x, held[0]!, slack)) &&
      Math.max(...truth) - Math.min(...truth) > 4 * (0.02 * Math.max(...truth.map(Math.abs)) + slack);
    if (frozen || (signs.length === compared && (signs.every((s) => s > 0) || signs.every((s) => s < 0)))) {
      details.push(`wrong: ${expr} {${key}}: node_exporter ${ne.map((v) => v.get(key)).join(" ")} | Banyan ${bn.map((v) => v.get(key)).join(" ")}`);
      return "wrong";
    }
    if (signs.length > 0 && !noisy) {
      noisy = true;
      details.push(`noise: ${expr} {${key}}: node_exporter ${ne.map((v) => v.get(key)).join(" ")} | Banyan ${bn.map((v) => v.get(key)).join(" ")}`);
    }
  }
  return noisy ? "noise" : "agree";
}
