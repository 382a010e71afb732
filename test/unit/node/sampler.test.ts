import fc from "fast-check";
import { Registry } from "prom-client";
import t from "tap";
import { Sampler, slotAfter } from "../../../src/node/sampler.js";
import type { Source } from "../../../src/node/source.js";
import { silentLogger } from "../../../src/core/logger.js";
import { SeriesType } from "../../../src/series/series-def.js";
import type { Alive, Frame } from "../../../src/gen/banyan/v1/uplink_pb.js";

t.test("slotAfter: the node's next slot, on its phase, strictly after the time and at most one interval on", async (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.integer({ min: 1, max: 3_600_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (after, interval, phase) => {
      const phaseMs = Math.floor(phase * interval);
      const slot = slotAfter(after, phaseMs, interval);
      return slot > after && slot - after <= interval && (slot - phaseMs) % interval === 0;
    }),
  );
});

t.test("tick: sample times strictly increase, even for two ticks in one ms or a clock stepped back", async (t) => {
  const times: number[] = [];
  let v = 0;
  const source: Source = {
    name: "counter",
    collect(target, nowMs) {
      target.set(target.define({ name: "x_total", family: "x", help: "", type: SeriesType.Counter, labels: [] }), ++v);
      times.push(nowMs);
    },
  };
  const frameTimes: number[] = [];
  const sink = {
    accept(frames: readonly Frame[], alive: readonly Alive[]) {
      for (const f of frames) frameTimes.push(Number(f.timeMs));
      for (const a of alive) frameTimes.push(Number(a.timeMs));
    },
  };
  const s = new Sampler(
    { origin: "n1", intervalMs: 1000, keyframeIntervalMs: 60_000, startSpreadMs: 0, job: "t", precision: [] },
    [source],
    sink,
    silentLogger(),
    new Registry(),
  );
  const t0 = Date.now();
  for (const at of [t0, t0, t0 + 5, t0 - 60_000, t0 + 6]) await s.tick(at);
  t.same(times, [t0, t0 + 1, t0 + 5, t0 + 6, t0 + 7], "each tick after the one before");
  t.same(frameTimes, times, "frames carry the tick's time");
  t.ok(
    frameTimes.every((x, i) => i === 0 || x > frameTimes[i - 1]!),
    "never two frames at one time",
  );
  s.stop();
});
