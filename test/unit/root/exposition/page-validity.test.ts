import { spawnSync } from "node:child_process";
import { create } from "@bufbuild/protobuf";
import fc from "fast-check";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../../src/core/logger.js";
import { FrameKind, FrameSchema, type Frame } from "../../../../src/gen/banyan/v1/uplink_pb.js";
import { AggregateEngine } from "../../../../src/root/ingest/aggregates.js";
import { renderRootPage } from "../../../../src/root/api/root-page.js";
import { RootStore } from "../../../../src/root/ingest/root-store.js";
import { DeltaEncoder } from "../../../../src/series/delta-encoder.js";
import { SeriesType, type SeriesDef } from "../../../../src/series/series-def.js";
import { encodePayload } from "../../../../src/wire/payload-codec.js";
import { DEFAULT_WIRE_LIMITS } from "../../../../src/wire/wire-limits.js";
import { requireProgram } from "../../../fixtures/programs.js";

/**
 * A node speaks only for itself (mTLS holds) but says what it likes about its series: any name,
 * family, type, HELP and labels its encoder will carry. Whatever the nodes send, the root's page
 * must stay one a strict consumer takes whole: `promtool check metrics` finds no error in it (exit
 * 1; exit 3 is lint only, such as a missing HELP). Before, a node could define `banyan_node_up`
 * itself (a second # TYPE line) or file `node_cpu_seconds_total` under another family, and every
 * node of that root was lost to such a consumer.
 */
const NAMES = ["banyan_node_up", "banyan_node_last_seen_timestamp_seconds", "banyan_root_frame_latency_seconds", "banyan_root_frame_latency_seconds_bucket", "banyan_root_frames_total", "node_cpu_seconds_total", "node_load1", "lat", "lat_bucket", "lat_sum", "lat_count", "lat_total", "x", "x_total", "up", "cluster:node_load1:avg"];
const LABELS = ["cpu", "le", "quantile", "mode", "instance", "cluster", "root", "job"];

const defArb = fc.record({
  name: fc.constantFrom(...NAMES),
  family: fc.constantFrom(...NAMES),
  type: fc.constantFrom(SeriesType.Gauge, SeriesType.Counter, SeriesType.HistogramPart, SeriesType.SummaryPart, SeriesType.Untyped),
  help: fc.constantFrom("", "Help.", "Other help.", "line\nbreak \\ x"),
  labels: fc.array(fc.tuple(fc.constantFrom(...LABELS), fc.constantFrom("1", "+Inf", "0.5", "a\"b", "")), { maxLength: 3 }),
  value: fc.oneof(fc.double(), fc.constant(NaN)),
});

function newStore(): { store: RootStore; registry: Registry; aggregates: AggregateEngine } {
  const registry = new Registry();
  const aggregates = new AggregateEngine([{ record: "cluster:node_load1:avg", expr: "avg", metric: "node_load1", by: [] }]);
  const store = new RootStore(
    { deadAfterMs: 60_000, forgetAfterMs: 600_000, intervalMs: 1000, resyncIntervalMs: 1000, keyframeIntervalMs: 60_000, resyncPerS: 1000, resyncBurst: 100, limits: DEFAULT_WIRE_LIMITS },
    aggregates,
    silentLogger(),
    registry,
  );
  store.connectDownlink({ resync: () => undefined });
  return { store, registry, aggregates };
}

t.test("page validity - whatever series nodes define, the root's page has no error for promtool check metrics", async (t) => {
  const promtool = requireProgram("promtool");
  let checked = 0;
  let lastBad = "";
  const run = fc.check(
    // Per node, frames in order: each defines some series and removes some of the earlier ones.
    fc.asyncProperty(fc.array(fc.array(fc.record({ defs: fc.array(defArb, { minLength: 1, maxLength: 6 }), remove: fc.array(fc.nat(20), { maxLength: 3 }) }), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 }), async (nodes) => {
      const { store, registry, aggregates } = newStore();
      const frames: Frame[] = [];
      nodes.forEach((steps, k) => {
        const enc = new DeltaEncoder();
        const ids: number[] = [];
        steps.forEach((step, seq) => {
          for (const d of step.defs) {
            // As a hostile encoder would put it on the wire: not through seriesDef's checks.
            const def: SeriesDef = { name: d.name, family: d.family, type: d.type, help: d.help, labels: [...d.labels].sort(([a], [b]) => (a < b ? -1 : 1)) };
            const id = enc.define(def);
            ids.push(id);
            enc.set(id, d.value);
          }
          for (const r of step.remove) if (r < ids.length && ids.length > 1) enc.remove(ids.splice(r, 1)[0]!);
          const f = enc.encode();
          if (f === null) return;
          const w = encodePayload(f.payload);
          frames.push(create(FrameSchema, { origin: `n${k}`, epoch: 1n, seq: BigInt(seq + 1), timeMs: BigInt(Date.now()), kind: f.kind === "key" ? FrameKind.KEY : FrameKind.DELTA, codec: w.codec, payload: w.bytes }));
        });
      });
      store.accept(frames, [], {});
      const { parts, done } = await renderRootPage("text", store, aggregates, new Set(["n0", "n1", "n9"]), registry, true, "r1");
      const page = Buffer.concat(parts).toString("utf8");
      done();
      store.stop();
      const r = spawnSync(promtool, ["check", "metrics"], { input: page, encoding: "utf8" });
      checked++;
      if (r.status !== 0 && r.status !== 3) lastBad = `promtool: exit ${r.status}: ${r.stderr.trim()}\n${page.split("\n").filter((l) => !/^(# (HELP|TYPE) )?banyan_root_/.test(l)).join("\n")}`;
      return r.status === 0 || r.status === 3;
    }),
    { numRuns: 100 },
  );
  const failed = (await run).failed;
  t.notOk(failed, failed ? `the smallest page promtool refused (the root's own banyan_root_* lines left out here):\n${lastBad}` : `${checked} pages checked: none refused`);
});
