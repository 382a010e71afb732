import fc from "fast-check";
import t from "tap";
import { ResyncBudget } from "../../../../src/root/ingest/resync-budget.js";

type Step = { kind: "need"; origin: number } | { kind: "key"; origin: number } | { kind: "wait"; ms: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 40 }).map((origin) => ({ kind: "need" as const, origin })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 40 }).map((origin) => ({ kind: "key" as const, origin })) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 700 }).map((ms) => ({ kind: "wait" as const, ms })) },
);

t.test("resync budget - never more than burst + rate × time, never twice for one origin in flight, oldest need first, every need served", async () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 300 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 1, max: 20 }), (steps, perS, burst) => {
      const inFlightMs = 1000;
      const b = new ResyncBudget({ perS, burst, inFlightMs, maxWaiting: 1000 });
      let now = 0;
      let sent = 0;
      const requestedAt = new Map<string, number>();
      const needOrder: string[] = [];
      const take = (): void => {
        const out = b.take(now);
        sent += out.length;
        if (sent > burst + (perS * now) / 1000 + 1e-9) throw new Error(`${sent} requests by ${now} ms: over ${burst} + ${perS}/s`);
        for (const { origin } of out) {
          const at = requestedAt.get(origin);
          if (at !== undefined && now - at < inFlightMs) throw new Error(`${origin} asked again ${now - at} ms after a request still in flight`);
          requestedAt.set(origin, now);
          // Fresh needs leave in the order they came (a timed-out request rejoins at the back).
          const k = needOrder.indexOf(origin);
          if (k > 0 && needOrder.slice(0, k).some((o) => !requestedAt.has(o))) throw new Error(`${origin} went before an older need`);
          if (k >= 0) needOrder.splice(k, 1);
        }
      };
      for (const s of steps) {
        if (s.kind === "need") {
          const o = `n${s.origin}`;
          if (!needOrder.includes(o) && !requestedAt.has(o)) needOrder.push(o);
          b.need(o, "gap");
        } else if (s.kind === "key") {
          b.satisfied(`n${s.origin}`);
          requestedAt.delete(`n${s.origin}`);
          const k = needOrder.indexOf(`n${s.origin}`);
          if (k >= 0) needOrder.splice(k, 1);
        } else {
          now += s.ms;
        }
        take();
      }
      // Every need is asked for within the time the rate needs for all of them (requests still
      // unanswered rejoin the queue meanwhile, so allow for those too).
      for (let k = b.waitingCount + b.inFlightCount; k >= 0; k--) {
        now += Math.ceil(1000 / perS) + 1;
        take();
      }
      if (needOrder.length !== 0) throw new Error(`${needOrder.length} needs never served`);
    }),
    { numRuns: 300, seed: 3 },
  );
});

t.test("resync budget - a need waits for its not-before time, a full waiting set refuses, a lost keyframe is asked again", async (t) => {
  const b = new ResyncBudget({ perS: 1000, burst: 10, inFlightMs: 500, maxWaiting: 2 });
  t.ok(b.need("a", "gap", 300));
  t.ok(b.need("b", "gap"));
  t.notOk(b.need("c", "gap"), "past maxWaiting a need is refused");
  t.same(b.take(0).map((x) => x.origin), ["b"], "a waits for its time");
  t.same(b.take(300).map((x) => x.origin), ["a"]);
  b.satisfied("b");
  t.same(b.take(700), [], "a is in flight: not asked again");
  t.same(b.take(800), [{ origin: "a", reason: "unanswered" }], "unanswered past inFlightMs: asked again");
  t.equal(b.inFlightCount, 1);
  b.satisfied("a");
  t.equal(b.inFlightCount + b.waitingCount, 0, "answered: nothing left");
});
