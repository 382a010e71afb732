import t from "tap";
import type { SampleTarget } from "../../../src/node/source.js";
import { SyntheticSource } from "../../../src/agent/synthetic-source.js";
import { SeriesType, seriesKey, type SeriesDef } from "../../../src/series/series-def.js";

/** A target that keeps what a source wrote, by series key. */
export function recorder(): SampleTarget & { values: Map<string, number>; defs: Map<string, SeriesDef>; removed: string[] } {
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

t.test("synthetic - seeded, node_exporter-shaped, moves about changeRate of its series per tick", async (t) => {
  const run = (node: string): number[] => {
    const rec = recorder();
    const src = new SyntheticSource({ series: 500, changeRate: 0.1, seed: 1, node });
    const snapshots: number[][] = [];
    for (let k = 0; k < 20; k++) {
      src.collect(rec, 1_000_000 + k * 1000);
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

t.test("synthetic - nodes look like a cluster's: mostly idle, one in five busy, each CPU's seconds add up to the time, no errors", async (t) => {
  const busy: number[] = [];
  for (let n = 0; n < 200; n++) {
    const rec = recorder();
    const src = new SyntheticSource({ series: 505, changeRate: 0.023, seed: 7, node: `n${n}` });
    src.collect(rec, 1_000_000);
    const before = new Map(rec.values);
    for (let k = 1; k <= 60; k++) src.collect(rec, 1_000_000 + k * 1000);
    const rate = (key: string): number => (rec.values.get(key)! - before.get(key)!) / 60;
    let cpuSum = 0;
    for (const [key] of rec.values) if (key.startsWith('node_cpu_seconds_total{cpu="0"')) cpuSum += rate(key);
    if (Math.abs(cpuSum - 1) > 0.02) t.fail(`n${n}: CPU 0's modes add up to ${cpuSum.toFixed(3)} s a second`);
    busy.push(1 - rate('node_cpu_seconds_total{cpu="0",mode="idle"}'));
    for (const [key, v] of rec.values) if (/_(errs|drop)_total/.test(key) && v !== 0) t.fail(`${key} moved to ${v} on n${n}`);
  }
  const busyNodes = busy.filter((b) => b > 0.5).length;
  t.ok(busyNodes >= 20 && busyNodes <= 60, `${busyNodes} of 200 nodes busy (one in five expected)`);
  t.ok(busy.filter((b) => b <= 0.5).every((b) => b < 0.1), "the others under 10 % busy");
});
