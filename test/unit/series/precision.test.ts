import fc from "fast-check";
import t from "tap";
import { sendTick } from "../../fixtures/wire-tick.js";
import { DeltaDecoder } from "../../../src/series/delta-decoder.js";
import { DeltaEncoder } from "../../../src/series/delta-encoder.js";
import { DEFAULT_PRECISION_RULES, PrecisionRules, globToRegExp } from "../../../src/series/precision.js";
import { SeriesType, seriesDef } from "../../../src/series/series-def.js";

t.test("precision - documented defaults by pattern, a site's rules first, parts of histograms always exact", async (t) => {
  const rules = new PrecisionRules([{ match: "node_load1", relative: 0.05, absolute: 0 }, ...DEFAULT_PRECISION_RULES]);
  const p = (name: string, type = SeriesType.Gauge) => rules.resolve(seriesDef(name, {}, type));
  t.same(p("node_hwmon_temp_celsius"), { relative: 0, absolute: 0.5 });
  t.same(p("node_hwmon_temp_crit_celsius"), { relative: 0, absolute: 0.5 });
  t.same(p("DCGM_FI_DEV_GPU_TEMP"), { relative: 0, absolute: 0.5 });
  t.same(p("node_boot_time_seconds"), { relative: 0, absolute: 0.5 });
  t.same(p("banyan_node_last_seen_timestamp_seconds"), { relative: 0, absolute: 0.5 });
  t.same(p("push_time_seconds"), { relative: 0, absolute: 0.5 }, "a Pushgateway-style push time is a wall-clock time");
  t.same(p("node_load5"), { relative: 0, absolute: 0.01 });
  t.same(p("node_load1"), { relative: 0.05, absolute: 0 }, "the site's rule wins");
  t.same(p("node_uname_info"), { relative: 0, absolute: 0 });
  t.same(p("node_sockstat_sockets_used"), { relative: 0.01, absolute: 0 }, "gauges: 1 %");
  t.same(p("node_memory_MemFree_bytes"), { relative: 0.0001, absolute: 0 }, "memory: 0.01 %, dashboards subtract them");
  t.same(p("node_filesystem_avail_bytes"), { relative: 0.001, absolute: 0 });
  t.same(p("node_network_receive_bytes_total", SeriesType.Counter), { relative: 0, absolute: 0 }, "counters: exact");
  t.same(new PrecisionRules([{ match: "*", relative: 0.5, absolute: 9 }]).resolve(seriesDef("h_bucket", { le: "1" }, SeriesType.HistogramPart)), { relative: 0, absolute: 0 });
  t.ok(globToRegExp("a.b*").test("a.bcd") && !globToRegExp("a.b*").test("axbcd"), "dots are literal");
});

t.test("precision - node_exporter's untyped counters (vmstat, netstat) travel exact: rate() at the root is the node's own, however large and slow", async (t) => {
  const names = ["node_vmstat_pgpgout", "node_vmstat_pgfault", "node_netstat_Tcp_RetransSegs", "node_netstat_Udp_InDatagrams"];
  fc.assert(
    fc.property(fc.constantFrom(...names), fc.integer({ min: 0, max: 2 ** 40 }), fc.array(fc.integer({ min: 0, max: 200 }), { minLength: 2, maxLength: 60 }), (name, start, steps) => {
      const enc = new DeltaEncoder(new PrecisionRules(DEFAULT_PRECISION_RULES));
      const dec = new DeltaDecoder();
      const id = enc.define(seriesDef(name, {}, SeriesType.Untyped));
      let v = start;
      for (const step of steps) {
        v += step;
        enc.set(id, v);
        sendTick(enc, dec);
        t.equal(dec.value(id), v, `${name} exact at the root`);
      }
    }),
    { numRuns: 80 },
  );
});

t.test("precision - Node Exporter Full's RAM Used (MemTotal − MemFree − Cached − Buffers − SReclaimable) at the root is within 0.01 % of its terms", async (t) => {
  const names = ["node_memory_MemTotal_bytes", "node_memory_MemFree_bytes", "node_memory_Cached_bytes", "node_memory_Buffers_bytes", "node_memory_SReclaimable_bytes"];
  fc.assert(
    fc.property(
      fc.integer({ min: 2 ** 30, max: 2 ** 42 }),
      fc.array(fc.tuple(fc.double({ min: 0, max: 0.6, noNaN: true }), fc.double({ min: 0, max: 0.2, noNaN: true }), fc.double({ min: 0, max: 0.05, noNaN: true }), fc.double({ min: 0, max: 0.05, noNaN: true })), { minLength: 1, maxLength: 40 }),
      (total, ticks) => {
        const enc = new DeltaEncoder(new PrecisionRules(DEFAULT_PRECISION_RULES));
        const dec = new DeltaDecoder();
        const ids = names.map((n) => enc.define(seriesDef(n, {}, SeriesType.Gauge)));
        for (const shares of ticks) {
          const truth = [total, ...shares.map((s) => Math.round(s * total))];
          truth.forEach((v, i) => enc.set(ids[i]!, v));
          sendTick(enc, dec);
          const used = (v: number[]) => v[0]! - v[1]! - v[2]! - v[3]! - v[4]!;
          const atRoot = ids.map((id) => dec.value(id)!);
          const bound = 1e-4 * truth.reduce((s, v) => s + v, 0) + 1e-6;
          if (Math.abs(used(atRoot) - used(truth)) > bound) return false;
        }
        return true;
      },
    ),
    { numRuns: 200 },
  );
});
