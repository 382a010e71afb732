import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { ProcfsSource } from "../../../src/agent/procfs-source.js";
import type { SampleTarget } from "../../../src/agent/source.js";
import { SyntheticSource } from "../../../src/agent/synthetic-source.js";
import { SeriesType, seriesKey, type SeriesDef } from "../../../src/series/series-def.js";

/** A target that keeps what a source wrote, by series key. */
function recorder(): SampleTarget & { values: Map<string, number>; defs: Map<string, SeriesDef>; removed: string[] } {
  const byId: SeriesDef[] = [];
  const values = new Map<string, number>();
  const defs = new Map<string, SeriesDef>();
  const removed: string[] = [];
  return {
    values,
    defs,
    removed,
    define(def) {
      byId.push(def);
      defs.set(seriesKey(def.name, def.labels), def);
      return byId.length - 1;
    },
    set(id, v) {
      const d = byId[id]!;
      values.set(seriesKey(d.name, d.labels), v);
    },
    remove(id) {
      const d = byId[id]!;
      removed.push(seriesKey(d.name, d.labels));
      values.delete(seriesKey(d.name, d.labels));
    },
  };
}

function procTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "banyan-proc-"));
  mkdirSync(dir, { recursive: true });
  for (const [f, text] of Object.entries(files)) writeFileSync(join(dir, f), text);
  return dir;
}

const STAT = "cpu  100 0 50 1000 5 0 1 0 0 0\ncpu0 60 0 30 500 3 0 1 0 0 0\ncpu1 40 0 20 500 2 0 0 0 0 0\nintr 1 2 3\nctxt 99\n";
const MEMINFO = "MemTotal:       24684092 kB\nMemAvailable:   24207152 kB\nActive(anon):       1504 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n";

t.test("procfs - node_exporter's names, labels and units from /proc", async (t) => {
  const dir = procTree({ stat: STAT, meminfo: MEMINFO, loadavg: "1.16 0.78 0.60 2/79 7330\n" });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rec = recorder();
  await new ProcfsSource(dir).collect(rec);
  t.equal(rec.values.get('node_cpu_seconds_total{cpu="0",mode="user"}'), 0.6, "USER_HZ ticks → seconds");
  t.equal(rec.values.get('node_cpu_seconds_total{cpu="1",mode="idle"}'), 5);
  t.equal(rec.values.get('node_cpu_seconds_total{cpu="0",mode="softirq"}'), 0.01);
  t.notOk([...rec.values.keys()].some((k) => k.includes('cpu="cpu"') || k.includes('cpu=""')), "the aggregate cpu line is not a cpu");
  t.equal(rec.defs.get('node_cpu_seconds_total{cpu="0",mode="user"}')!.type, SeriesType.Counter);
  t.equal(rec.values.get("node_memory_MemTotal_bytes"), 24684092 * 1024, "kB → bytes");
  t.equal(rec.values.get("node_memory_Active_anon_bytes"), 1504 * 1024, "Active(anon) → Active_anon");
  t.equal(rec.values.get("node_memory_HugePages_Total"), 0, "a field without unit keeps its name");
  t.equal(rec.values.get("node_memory_Hugepagesize_bytes"), 2048 * 1024);
  t.equal(rec.defs.get("node_memory_MemTotal_bytes")!.help, "Memory information field MemTotal_bytes.");
  t.same([rec.values.get("node_load1"), rec.values.get("node_load5"), rec.values.get("node_load15")], [1.16, 0.78, 0.6]);
  t.equal(rec.values.size, 16 + 5 + 3);
});

t.test("procfs - a hot-unplugged CPU's series end; missing files are skipped, not fatal", async (t) => {
  const dir = procTree({ stat: STAT, meminfo: MEMINFO });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rec = recorder();
  const src = new ProcfsSource(dir);
  await src.collect(rec);
  t.notOk(rec.values.has("node_load1"), "no loadavg file: no load series");
  writeFileSync(join(dir, "stat"), "cpu  100 0 50 1000 5 0 1 0 0 0\ncpu0 61 0 30 500 3 0 1 0 0 0\n");
  await src.collect(rec);
  t.equal(rec.removed.filter((k) => k.includes('cpu="1"')).length, 8, "cpu1's eight modes ended");
  t.equal(rec.values.get('node_cpu_seconds_total{cpu="0",mode="user"}'), 0.61);
  await new ProcfsSource(join(dir, "nothing-here")).collect(rec);
});

t.test("synthetic - seeded, node_exporter-shaped, moves about changeRate of its series per tick", async (t) => {
  const run = (node: string): number[] => {
    const rec = recorder();
    const src = new SyntheticSource({ series: 500, changeRate: 0.1, seed: 1, node });
    const snapshots: number[][] = [];
    for (let k = 0; k < 20; k++) {
      src.collect(rec);
      snapshots.push([...rec.values.values()]);
    }
    t.equal(rec.values.size, 500);
    t.ok(rec.defs.has('node_cpu_seconds_total{cpu="0",mode="idle"}'));
    t.ok([...rec.defs.values()].some((d) => d.type === SeriesType.Gauge) && [...rec.defs.values()].some((d) => d.type === SeriesType.Counter));
    let changed = 0;
    for (let k = 1; k < snapshots.length; k++) changed += snapshots[k]!.filter((v, i) => v !== snapshots[k - 1]![i]).length;
    const rate = changed / (19 * 500);
    t.ok(rate > 0.07 && rate < 0.13, `change rate ${rate.toFixed(3)} ≈ 0.1`);
    return snapshots.at(-1)!;
  };
  t.same(run("n1"), run("n1"), "same node, same seed: same stream");
  t.notSame(run("n1"), run("n2"), "other node: other stream");
});
