import fc from "fast-check";
import t from "tap";
import { KeyframeSchedule, defaultStartSpreadMs, namePhase } from "../../../src/series/keyframe-schedule.js";

/**
 * Nodes started together, ticking on the wall clock's interval grid as samplers do: how many
 * keyframes (first or periodic) each tick carries, and each node's keyframe times.
 */
function simulate(names: readonly string[], intervalMs: number, keyframeIntervalMs: number, startSpreadMs: number, startMs: number, ticks: number) {
  const nodes = names.map((n) => ({ s: new KeyframeSchedule(n, { keyframeIntervalMs, startSpreadMs }, startMs), first: true, times: [] as number[] }));
  const perTick: number[] = [];
  const firstTick = Math.ceil(startMs / intervalMs) * intervalMs;
  for (let k = 0; k < ticks; k++) {
    const now = firstTick + k * intervalMs;
    let n = 0;
    for (const node of nodes) {
      if (!node.s.started(now)) continue;
      if (node.first || node.s.periodicDue(now)) {
        node.first = false;
        node.s.sent(now);
        node.times.push(now);
        n++;
      }
    }
    perTick.push(n);
  }
  return { perTick, nodes };
}

const names = fc.oneof(
  // Real clusters' names differ in a digit or two.
  fc.integer({ min: 1, max: 2000 }).map((n) => Array.from({ length: n }, (_, k) => `node${String(k + 1).padStart(5, "0")}`)),
  fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/), { minLength: 1, maxLength: 500 }),
);

t.test("keyframe schedule - N nodes started in one tick send about N × interval / window keyframes per tick, never all at once", async () => {
  fc.assert(
    fc.property(names, fc.constantFrom(100, 250, 1000), fc.integer({ min: 4, max: 120 }), fc.integer({ min: 0, max: 2 ** 40 }), (list, intervalMs, periodTicks, startMs) => {
      const keyframeIntervalMs = periodTicks * intervalMs;
      const { perTick } = simulate(list, intervalMs, keyframeIntervalMs, keyframeIntervalMs, startMs, 3 * periodTicks);
      const mean = list.length / periodTicks;
      // Phases come from a hash, so ticks fluctuate around the mean as a binomial would.
      const bound = Math.ceil(mean) + 4 * Math.sqrt(mean) + 3;
      const worst = Math.max(...perTick);
      if (worst > bound) throw new Error(`${list.length} nodes, ${periodTicks} ticks per keyframe interval: ${worst} keyframes in one tick (bound ${bound.toFixed(1)})`);
    }),
    { numRuns: 200, seed: 11 },
  );
});

t.test("keyframe schedule - after its first keyframe a node sends exactly one per keyframe interval, at its own phase", async () => {
  fc.assert(
    fc.property(names, fc.integer({ min: 2, max: 60 }), fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 0, max: 3 }), (list, periodTicks, startMs, spreadFactor) => {
      const intervalMs = 1000;
      const keyframeIntervalMs = periodTicks * intervalMs;
      const spread = Math.floor((spreadFactor / 3) * keyframeIntervalMs);
      const { nodes } = simulate(list.slice(0, 50), intervalMs, keyframeIntervalMs, spread, startMs, 6 * periodTicks);
      for (const n of nodes) {
        const [first, ...rest] = n.times;
        if (first === undefined) throw new Error("a node never sent a keyframe");
        if (first - startMs > spread + intervalMs) throw new Error(`first keyframe ${first - startMs} ms after the start, window ${spread}`);
        for (let k = 1; k < rest.length; k++) {
          if (rest[k]! - rest[k - 1]! !== keyframeIntervalMs) throw new Error(`periodic keyframes ${rest[k]! - rest[k - 1]!} ms apart, interval ${keyframeIntervalMs}`);
        }
        if (rest.length > 0 && rest[0]! - first > keyframeIntervalMs) throw new Error("more than one interval without a keyframe after the first");
      }
    }),
    { numRuns: 200, seed: 12 },
  );
});

t.test("keyframe schedule - a keyframe asked for (resync, reconnect) does not move the periodic phase", async (t) => {
  const s = new KeyframeSchedule("node0042", { keyframeIntervalMs: 60_000, startSpreadMs: 0 }, 0);
  const phaseMs = Math.floor(s.phase * 60_000);
  s.sent(0);
  t.equal(s.periodicDue(phaseMs - 1), phaseMs > 0 ? false : true);
  s.sent(phaseMs + 5_000); // a resync keyframe in the next period
  t.equal(s.periodicDue(phaseMs + 60_000 - 1), false, "no periodic keyframe before the node's phase comes round");
  t.equal(s.periodicDue(phaseMs + 60_000), true, "the periodic keyframe stays at the node's phase");
});

t.test("keyframe schedule - phases of similar names spread evenly over [0, 1)", async (t) => {
  const buckets = new Array<number>(20).fill(0);
  for (let k = 0; k < 50_000; k++) buckets[Math.floor(namePhase(`node${String(k).padStart(5, "0")}`) * 20)]!++;
  const fullest = Math.max(...buckets);
  const emptiest = Math.min(...buckets);
  t.ok(fullest < 2500 * 1.1 && emptiest > 2500 * 0.9, `50,000 names in 20 buckets: ${emptiest}..${fullest}`);
});

t.test("keyframe schedule - the default start window: at once below 250 nodes, ~250 nodes a second above, at most the keyframe interval", async (t) => {
  t.equal(defaultStartSpreadMs(64, 60_000), 0);
  t.equal(defaultStartSpreadMs(5_000, 60_000), 20_000);
  t.equal(defaultStartSpreadMs(200_000, 60_000), 60_000);
});
