import t from "tap";
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
  t.same(p("node_memory_MemFree_bytes"), { relative: 0.01, absolute: 0 }, "gauges: 1 %");
  t.same(p("node_network_receive_bytes_total", SeriesType.Counter), { relative: 0, absolute: 0 }, "counters: exact");
  t.same(new PrecisionRules([{ match: "*", relative: 0.5, absolute: 9 }]).resolve(seriesDef("h_bucket", { le: "1" }, SeriesType.HistogramPart)), { relative: 0, absolute: 0 });
  t.ok(globToRegExp("a.b*").test("a.bcd") && !globToRegExp("a.b*").test("axbcd"), "dots are literal");
});
