import { rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import t from "tap";
import { sendTick } from "../../fixtures/wire-tick.js";
import { COLLECTOR_NAMES, NodeSource } from "../../../src/agent/node-source.js";
import { parseLimits, parseSelfStat } from "../../../src/agent/collectors/process-collector.js";
import { MAX_FILES, MAX_TOTAL_BYTES } from "../../../src/agent/collectors/textfile-collector.js";
import { writeTimex, type Timex } from "../../../src/agent/collectors/timex-collector.js";
import { SeriesWriter } from "../../../src/agent/collectors/series-writer.js";
import { SeriesType, type SeriesDef } from "../../../src/series/series-def.js";
import { DEFAULT_PRECISION_RULES, PrecisionRules } from "../../../src/series/precision.js";
import { DeltaDecoder } from "../../../src/series/delta-decoder.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { fileTree } from "../../fixtures/file-tree.js";
import { recorder } from "./sources.test.js";

/** Every collector switched off but these. */
const ALL_BUT = (...keep: string[]): string[] => COLLECTOR_NAMES.filter((c) => !keep.includes(c));

t.test("textfile: *.prom files as node_exporter reads them; a bad file left out whole and flagged; bounded", async (t) => {
  const dir = fileTree({
    "a.prom": '# HELP my_job_last_success Last success.\n# TYPE my_job_last_success gauge\nmy_job_last_success{job_name="backup"} 1.7e9\nmy_count_total 3\nrole{job="x"} 1\n',
    "b.prom": "bad line {\n",
    "c.prom": "stamped 1 1700000000000\n",
    "notes.txt": "not_read 1\n",
  });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  utimesSync(join(dir, "a.prom"), 1_700_000_100, 1_700_000_100);
  const src = new NodeSource({ proc: "/nonexistent", sys: "/nonexistent", rootfs: "", textfileDirectory: dir }, ALL_BUT("textfile"));
  const rec = recorder();
  await src.collect(rec);
  t.equal(rec.values.get('my_job_last_success{job_name="backup"}'), 1.7e9);
  t.equal(rec.defs.get('my_job_last_success{job_name="backup"}')!.help, "Last success.");
  t.equal(rec.values.get("my_count_total"), 3);
  t.equal(rec.defs.get("my_count_total")!.type, SeriesType.Counter, "an untyped *_total travels exact, as a counter");
  t.equal(rec.defs.get("my_count_total")!.help, `Metric read from ${join(dir, "a.prom")}`, "node_exporter's HELP for a file that gave none");
  t.equal(rec.values.get('role{exported_job="x"}'), 1, "a file's job label kept as exported_job");
  t.equal(rec.values.get(`node_textfile_mtime_seconds{file="${join(dir, "a.prom")}"}`), 1_700_000_100);
  t.notOk([...rec.values.keys()].some((k) => k.includes("b.prom") || k.includes("c.prom") || k.startsWith("not_read") || k.startsWith("stamped")), "bad, timestamped and non-.prom files left out");
  t.equal(rec.values.get("node_textfile_scrape_error"), 1);
  t.equal(rec.values.get('node_scrape_collector_success{collector="textfile"}'), 1, "the collector itself ran");
  t.ok(rec.values.has('node_scrape_collector_duration_seconds{collector="textfile"}'));

  // Mend the bad files and change a value: read again (size or mtime changed); the error clears.
  rmSync(join(dir, "b.prom"));
  rmSync(join(dir, "c.prom"));
  writeFileSync(join(dir, "a.prom"), "my_count_total 4\n");
  await src.collect(rec);
  t.equal(rec.values.get("my_count_total"), 4);
  t.ok(rec.removed.includes('my_job_last_success{job_name="backup"}'), "a series gone from its file ends");
  t.equal(rec.values.get("node_textfile_scrape_error"), 0);

  // More files than the bound: the first MAX_FILES by name are read, and the error says so.
  for (let i = 0; i < MAX_FILES + 5; i++) writeFileSync(join(dir, `f${String(i).padStart(4, "0")}.prom`), `many{i="${i}"} ${i}\n`);
  await src.collect(rec);
  t.equal([...rec.values.keys()].filter((k) => k.startsWith("many{")).length, MAX_FILES - 1, "a.prom and the first others up to the bound");
  t.equal(rec.values.get("node_textfile_scrape_error"), 1);

  // Big files: what one tick may parse is bounded in bytes too.
  const big = fileTree({});
  t.teardown(() => rmSync(big, { recursive: true, force: true }));
  const line = (k: number): string => `# ${"x".repeat(MAX_TOTAL_BYTES / 4 - 20)}\nbig_${k} 1\n`;
  for (let k = 0; k < 6; k++) writeFileSync(join(big, `b${k}.prom`), line(k));
  const bigRec = recorder();
  await new NodeSource({ proc: "/nonexistent", sys: "/nonexistent", rootfs: "", textfileDirectory: big }, ALL_BUT("textfile")).collect(bigRec);
  t.equal([...bigRec.values.keys()].filter((k) => k.startsWith("big_")).length, 4, "files past the byte budget left out");
  t.equal(bigRec.values.get("node_textfile_scrape_error"), 1);
});

t.test("textfile: no directory configured writes only node_textfile_scrape_error 0", async (t) => {
  const rec = recorder();
  await new NodeSource({ proc: "/nonexistent", sys: "/nonexistent", rootfs: "" }, ALL_BUT("textfile")).collect(rec);
  t.same([...rec.values.keys()].filter((k) => !k.startsWith("node_scrape_collector")), ["node_textfile_scrape_error"]);
  t.equal(rec.values.get("node_textfile_scrape_error"), 0);
});

const TIMEX: Timex = { offset: 0, freq: 0, maxerror: 16_000_000, esterror: 16_000_000, status: 64, constant: 2, tick: 10_000, ppsfreq: 0, jitter: 0, shift: 0, stabil: 0, jitcnt: 0, calcnt: 0, errcnt: 0, stbcnt: 0, tai: 0 };

function timexValues(state: number, tx: Timex): Map<string, number> {
  const rec = recorder();
  const w = new SeriesWriter(rec);
  w.begin();
  writeTimex(w, state, tx);
  return rec.values;
}

t.test("timex: node_exporter 1.5's values from adjtimex (this machine's reference scrape, and µs/ns offsets)", async (t) => {
  const v = timexValues(5, TIMEX);
  // The values the real node_exporter 1.5 showed for the same kernel state (../shared/reference/node_exporter-1.5.0-sample.prom).
  t.same(Object.fromEntries(v), {
    node_timex_sync_status: 0,
    node_timex_offset_seconds: 0,
    node_timex_frequency_adjustment_ratio: 1,
    node_timex_maxerror_seconds: 16,
    node_timex_estimated_error_seconds: 16,
    node_timex_status: 64,
    node_timex_loop_time_constant: 2,
    node_timex_tick_seconds: 0.01,
    node_timex_pps_frequency_hertz: 0,
    node_timex_pps_jitter_seconds: 0,
    node_timex_pps_shift_seconds: 0,
    node_timex_pps_stability_hertz: 0,
    node_timex_pps_jitter_total: 0,
    node_timex_pps_calibration_total: 0,
    node_timex_pps_error_total: 0,
    node_timex_pps_stability_exceeded_total: 0,
    node_timex_tai_offset_seconds: 0,
  });
  const synced = timexValues(0, { ...TIMEX, offset: 1500, freq: 65536 * 12, status: 0x2000 | 1, jitter: 2000 });
  t.equal(synced.get("node_timex_sync_status"), 1);
  t.equal(synced.get("node_timex_offset_seconds"), 1.5e-6, "STA_NANO: offset in ns");
  t.equal(synced.get("node_timex_pps_jitter_seconds"), 2e-6);
  t.equal(synced.get("node_timex_frequency_adjustment_ratio"), 1 + 12e-6, "freq is ppm with a 16-bit fraction");
  t.equal(timexValues(0, { ...TIMEX, offset: 1500 }).get("node_timex_offset_seconds"), 1.5e-3, "without STA_NANO: µs");
});

t.test("timex: the real adjtimex(2) on this machine, through koffi", async (t) => {
  const rec = recorder();
  await new NodeSource({ proc: "/proc", sys: "/sys", rootfs: "" }, ALL_BUT("timex")).collect(rec);
  t.equal(rec.values.get('node_scrape_collector_success{collector="timex"}'), 1);
  t.ok(rec.values.get("node_timex_tick_seconds")! > 0, "the kernel's tick");
  t.ok([0, 1].includes(rec.values.get("node_timex_sync_status")!));
  t.equal(rec.values.size, 17 + 2);
});

t.test("process: the agent's own process_* under client libraries' names", async (t) => {
  const rec = recorder();
  await new NodeSource({ proc: "/nonexistent", sys: "/nonexistent", rootfs: "" }, ALL_BUT("process")).collect(rec);
  const v = (k: string): number => rec.values.get(k)!;
  t.ok(v("process_cpu_seconds_total") > 0);
  t.ok(Math.abs(v("process_resident_memory_bytes") - process.memoryUsage.rss()) < 64 * 1024 * 1024);
  t.ok(v("process_virtual_memory_bytes") >= v("process_resident_memory_bytes"));
  t.ok(Math.abs(v("process_start_time_seconds") - (Date.now() / 1000 - process.uptime())) < 5, "start time from btime and the stat start ticks");
  t.ok(v("process_open_fds") > 2 && v("process_open_fds") <= v("process_max_fds"));
  t.ok(v("process_virtual_memory_max_bytes") > 0);
  t.equal(rec.defs.get("process_cpu_seconds_total")!.type, SeriesType.Counter);
  t.same(parseLimits("Limit Soft Limit Hard Limit Units\nMax open files            1024                 524288               files\nMax address space         unlimited            unlimited            bytes\n"), {
    maxFds: 1024,
    maxAddressSpace: 2 ** 64,
  });
  // The command name may hold spaces and parentheses: fields count from the last ")".
  const fieldsAfter = Array.from({ length: 50 }, (_, i) => String(i + 3));
  t.same(parseSelfStat(`123 (a) b (c)) ${fieldsAfter.join(" ")}`), { startTicks: 22, vsize: 23 });
});

t.test("node_scrape_collector_*: each collector's duration, and 0 for one that failed", async (t) => {
  const rec = recorder();
  const src = new NodeSource({ proc: "/nonexistent", sys: "/nonexistent", rootfs: "" }, ["filesystem", "timex", "process"]);
  await src.collect(rec);
  const names = [...rec.values.keys()].filter((k) => k.startsWith("node_scrape_collector_success")).length;
  t.equal(names, COLLECTOR_NAMES.length - 3, "one per active collector");
  t.equal(rec.values.get('node_scrape_collector_success{collector="cpu"}'), 1, "a missing file is no failure");
  fc.assert(
    fc.property(fc.constantFrom(...[...rec.values.keys()].filter((k) => k.startsWith("node_scrape_collector_duration_seconds"))), (k) => rec.values.get(k)! >= 0 && rec.values.get(k)! < 10),
  );
  // An odd file breaks a collector (an empty conntrack stat table): it shows 0, the others go on.
  const root = fileTree({ "proc/sys/net/netfilter/nf_conntrack_count": "5\n", "proc/net/stat/nf_conntrack": "", "proc/loadavg": "1.16 0.78 0.60 2/79 7330\n" });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const odd = recorder();
  await new NodeSource({ proc: join(root, "proc"), sys: join(root, "sys"), rootfs: root }, ["filesystem", "timex", "process"]).collect(odd);
  t.equal(odd.values.get('node_scrape_collector_success{collector="conntrack"}'), 0);
  t.equal(odd.values.get('node_scrape_collector_success{collector="loadavg"}'), 1);
  t.equal(odd.values.get("node_load1"), 1.16);
});

t.test("amazonefa: EFA hw_counters with the HyperPod fork's names; other RDMA devices left alone", async (t) => {
  const root = fileTree({
    "sys/class/infiniband/rdmap16s27/ports/1/hw_counters/rdma_read_bytes": "4096\n",
    "sys/class/infiniband/rdmap16s27/ports/1/hw_counters/tx_bytes": "123456789\n",
    "sys/class/infiniband/rdmap16s27/ports/1/hw_counters/retrans_timeout_events": "2\n",
    "sys/class/infiniband/rdmap16s27/ports/1/hw_counters/unknown_new_counter": "9\n",
    "sys/class/infiniband/rdmap16s27/ports/1/hw_counters/lifespan": "12\n",
    "sys/class/infiniband/mlx5_0/ports/1/hw_counters/lifespan": "12\n",
    "sys/bus/pci/drivers/efa/.keep": "",
    "sys/bus/pci/drivers/mlx5_core/.keep": "",
    "sys/devices/pci0000:00/0000:00:10.0/.keep": "",
    "sys/devices/pci0000:00/0000:00:11.0/.keep": "",
  });
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  symlinkSync(join(root, "sys/devices/pci0000:00/0000:00:10.0"), join(root, "sys/class/infiniband/rdmap16s27/device"));
  symlinkSync(join(root, "sys/bus/pci/drivers/efa"), join(root, "sys/devices/pci0000:00/0000:00:10.0/driver"));
  symlinkSync(join(root, "sys/devices/pci0000:00/0000:00:11.0"), join(root, "sys/class/infiniband/mlx5_0/device"));
  symlinkSync(join(root, "sys/bus/pci/drivers/mlx5_core"), join(root, "sys/devices/pci0000:00/0000:00:11.0/driver"));
  const rec = recorder();
  await new NodeSource({ proc: join(root, "proc"), sys: join(root, "sys"), rootfs: root }, ALL_BUT("amazonefa")).collect(rec);
  const efa = Object.fromEntries([...rec.values].filter(([k]) => k.startsWith("node_amazonefa")));
  t.same(efa, {
    'node_amazonefa_info{device="rdmap16s27"}': 1,
    'node_amazonefa_rdma_read_bytes{device="rdmap16s27",port="1"}': 4096,
    'node_amazonefa_tx_bytes{device="rdmap16s27",port="1"}': 123456789,
    'node_amazonefa_retrans_timeout_events{device="rdmap16s27",port="1"}': 2,
    'node_amazonefa_lifespan{device="rdmap16s27",port="1"}': 12,
  });
  t.equal(rec.defs.get('node_amazonefa_tx_bytes{device="rdmap16s27",port="1"}')!.type, SeriesType.Counter, "counters: they travel exact");
});

t.test("audit: every cumulative family the agent emits travels exact, so rate() at the root is the node's own", async (t) => {
  const defs: SeriesDef[] = [];
  const target = { define: (d: SeriesDef) => defs.push(d) - 1, set: () => undefined, remove: () => undefined };
  await new NodeSource({ proc: "/proc", sys: "/sys", rootfs: "" }).collect(target);
  const rules = new PrecisionRules(DEFAULT_PRECISION_RULES);
  // Cumulative whatever TYPE line it is shown with: counters, node_exporter's untyped counters
  // (vmstat, netstat), *_total, and the conntrack statistics node_exporter shows as gauges.
  const cumulative = (d: SeriesDef): boolean =>
    d.type === SeriesType.Counter || d.type === SeriesType.Untyped || /_total$/.test(d.name) || d.name.startsWith("node_nf_conntrack_stat_");
  const families = [...new Map(defs.filter(cumulative).map((d) => [d.name, d])).values()];
  t.ok(families.length > 100, `${families.length} cumulative families on this machine`);
  const inexact = families.filter((d) => {
    const p = rules.resolve(d);
    return p.relative !== 0 || p.absolute !== 0;
  });
  t.same(inexact.map((d) => d.name), [], "none travels with a bound");
  fc.assert(
    fc.property(fc.constantFrom(...families), fc.integer({ min: 0, max: 2 ** 44 }), fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 2, maxLength: 30 }), (def, start, steps) => {
      const enc = new DeltaEncoder(rules);
      const dec = new DeltaDecoder();
      const id = enc.define(def);
      let v = start;
      const first = v;
      let firstAtRoot: number | undefined;
      for (const step of steps) {
        v += step;
        enc.set(id, v);
        sendTick(enc, dec);
        firstAtRoot ??= dec.value(id);
      }
      // rate() over the run: the increase at the root equals the node's.
      return dec.value(id)! - firstAtRoot! === v - first - (steps[0] ?? 0);
    }),
    { numRuns: 300 },
  );
});
