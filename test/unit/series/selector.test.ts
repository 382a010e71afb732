import fc from "fast-check";
import t from "tap";
import { Selector } from "../../../src/series/selector.js";

const labels = (o: Record<string, string>) => Object.entries(o);

t.test("selector - PromQL matchers: =, !=, =~ and !~ (anchored), the name alone or as __name__, extra labels win", async (t) => {
  const s = Selector.parse('node_load1{partition="gpu", mode!~"idle|iowait"}', "q");
  t.equal(s.metricName, "node_load1");
  t.ok(s.matches("node_load1", labels({ partition: "gpu", mode: "user" })));
  t.notOk(s.matches("node_load1", labels({ partition: "gpu", mode: "idle" })));
  t.notOk(s.matches("node_load5", labels({ partition: "gpu" })));
  t.notOk(s.matches("node_load1", labels({ partition: "gpu2" })), "= is whole-value");
  const re = Selector.parse('{__name__=~"DCGM_.*", instance!="n1"}', "q");
  t.equal(re.metricName, null);
  t.ok(re.matches("DCGM_FI_DEV_GPU_UTIL", [], { instance: "n2" }));
  t.notOk(re.matches("DCGM_FI_DEV_GPU_UTIL", [], { instance: "n1" }));
  t.notOk(re.matches("xDCGM_", [], { instance: "n2" }), "a regexp is anchored at both ends");
  t.ok(Selector.parse('{cluster="a"}', "q").matches("x", labels({ cluster: "b" }), { cluster: "a" }), "the root's own labels win over the series'");
  t.ok(Selector.parse("{\"metric.name\", a='x\\\"y'}", "q").matches("metric.name", labels({ a: 'x"y' })), "quoted names and escapes");
  t.ok(Selector.parse("up", "q").matches("up", []));
});

t.test("selector - a bad selector is an error naming where, the text and what was expected", async (t) => {
  const bad: [string, RegExp][] = [
    ["", /expected a metric name or '\{'/],
    ['{a="b"', /expected ',' or '\}'/],
    ["{a=b}", /expected a quoted string/],
    ['{a=~"("}', /valid regular expression for a/],
    ['{a=~".*"}', /does not match the empty label set/],
    ["{}", /does not match the empty label set/],
    ['up{a="\\q"}', /known escape/],
    ["up down", /the end of the selector/],
    ['{a=="x"}', /quoted string/],
  ];
  for (const [text, msg] of bad) t.throws(() => Selector.parse(text, "forward.allow[0]"), { message: msg }, text);
  t.throws(() => Selector.parse("up", "forward.allow[0]") && Selector.parse("{1a=\"x\"}", "forward.allow[0]"), { message: /^forward\.allow\[0\]: "\{1a=\\"x\\"\}": expected a label name at character 2/ });
});

t.test("selector - any label value round-trips through a quoted = matcher, and != is its negation", async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), (v, other) => {
      const q = JSON.stringify(v);
      const eq = Selector.parse(`m{l=${q}}`, "q");
      const ne = Selector.parse(`m{l!=${q}}`, "q");
      const l = labels({ l: other });
      return eq.matches("m", labels({ l: v })) && eq.matches("m", l) === (other === v) && ne.matches("m", l) === (other !== v);
    }),
  );
});
