import fc from "fast-check";
import { Registry } from "prom-client";
import t from "tap";
import { FrameKind } from "../../../../src/gen/banyan/v1/uplink_pb.js";
import { ClusterQuotas } from "../../../../src/root/ingest/cluster-quotas.js";
import { ExpositionCache } from "../../../../src/root/exposition/exposition-cache.js";
import { OriginState } from "../../../../src/root/ingest/origin-state.js";
import { ForwardFilter } from "../../../../src/root/outputs/central/forward-filter.js";
import { ForwardedOrigin } from "../../../../src/root/outputs/central/forwarded-origin.js";
import { DeltaEncoder } from "../../../../src/series/delta-encoder.js";
import { DEFAULT_SERIES_LIMITS } from "../../../../src/series/payload.js";
import { DEFAULT_PRECISION_RULES, PrecisionRules } from "../../../../src/series/precision.js";
import { SeriesType, seriesDef, seriesKey } from "../../../../src/series/series-def.js";
import { DEFAULT_WIRE_LIMITS } from "../../../../src/wire/wire-limits.js";
import { decodePayload } from "../../../../src/wire/payload-codec.js";

const NAMES = ["node_load1", "node_cpu_seconds_total", "node_memory_MemFree_bytes", "app_progress"];

/** The series of an origin as key → value. */
function held(st: OriginState): Map<string, number> {
  const out = new Map<string, number>();
  const d = st.decoded;
  for (let id = 0; id < d.capacity; id++) {
    const def = d.def(id);
    if (def !== undefined) out.set(seriesKey(def.name, def.labels), d.value(id));
  }
  return out;
}

t.test("central forwarding - over random streams, the central copy of every allowed series is exactly the cluster root's, and nothing else arrives", async (t) => {
  const step = fc.record({
    name: fc.constantFrom(...NAMES),
    mode: fc.constantFrom("user", "idle", "system"),
    value: fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constant(NaN), fc.integer({ min: 0, max: 100 })),
    remove: fc.boolean(),
    key: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(fc.array(step, { maxLength: 8 }), { minLength: 1, maxLength: 25 }), (ticks) => {
      const filter = new ForwardFilter({ series: "raw", allow: ['{__name__=~"node_.*"}'], deny: ['node_cpu_seconds_total{mode="idle"}'], events: true });
      const node = new DeltaEncoder(new PrecisionRules(DEFAULT_PRECISION_RULES));
      const atRoot = new OriginState("n1", new ExpositionCache(), DEFAULT_SERIES_LIMITS);
      atRoot.epoch = 5n;
      const atCentral = new OriginState("site/n1", new ExpositionCache(), DEFAULT_SERIES_LIMITS);
      let fwd: ForwardedOrigin | null = null;
      const deliver = (f: ReturnType<ForwardedOrigin["applied"]>): void => {
        if (f === null) return;
        const mode = f.kind === FrameKind.KEY ? "key" : f.kind === FrameKind.VALUES ? "values" : "delta";
        atCentral.apply(decodePayload(f.codec, f.payload, DEFAULT_WIRE_LIMITS), mode);
      };
      for (const tick of ticks) {
        let forceKey = false;
        for (const s of tick) {
          const id = node.define(seriesDef(s.name, s.name === "node_cpu_seconds_total" ? { mode: s.mode } : {}, s.name === "node_cpu_seconds_total" ? SeriesType.Counter : SeriesType.Gauge));
          if (s.remove) node.remove(id);
          else node.set(id, s.name === "node_cpu_seconds_total" ? Math.abs(s.value) || 0 : s.value);
          forceKey ||= s.key;
        }
        if (forceKey) node.requestKeyframe("key");
        const f = node.encode();
        if (f === null) continue;
        const applied = atRoot.apply(f.payload, f.kind);
        if (fwd === null) {
          fwd = new ForwardedOrigin("site/n1", filter, DEFAULT_SERIES_LIMITS, atRoot);
          deliver(fwd.restart(atRoot));
        } else deliver(fwd.applied(atRoot, applied));
        const want = new Map([...held(atRoot)].filter(([k]) => k.startsWith("node_") && !k.includes('mode="idle"')));
        const got = held(atCentral);
        if (got.size !== want.size) return false;
        for (const [k, v] of want) if (!Object.is(got.get(k), v) && !(Number.isNaN(v) && Number.isNaN(got.get(k)))) return false;
      }
      return true;
    }),
    { numRuns: 200 },
  );
});

t.test("cluster quotas - bytes per second as a token bucket of two seconds, series and origins per cluster, each cluster on its own", async (t) => {
  const q = new ClusterQuotas({ overrides: { a: { maxBytesPerS: 1000, maxSeries: 10, maxOrigins: 2 } } }, new Registry());
  t.ok(q.takeBytes("a", 2000, 0), "a burst of two seconds' worth");
  t.notOk(q.takeBytes("a", 1, 0), "then nothing");
  t.ok(q.takeBytes("a", 500, 500), "half a second refills half the rate");
  t.ok(q.takeBytes("b", 1_000_000, 0), "another cluster has the defaults, untouched");
  t.ok(q.addOrigin("a", 0) && q.addOrigin("a", 0));
  t.notOk(q.addOrigin("a", 0), "origins bounded");
  t.ok(q.admitSeries("a", 0, 10, 0));
  q.held("a", 0, 10);
  t.notOk(q.admitSeries("a", 0, 1, 0), "series bounded across the cluster's origins");
  t.ok(q.admitSeries("a", 10, 8, 0), "shrinking is always allowed");
  q.removeOrigin("a", 10);
  t.ok(q.admitSeries("a", 0, 10, 0) && q.addOrigin("a", 0), "a forgotten origin gives back its share");
});
