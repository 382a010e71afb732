import t from "tap";
import { HealWatch } from "../../../src/wire/heal-watch.js";
import type { ParentProbe } from "../../../src/wire/parent-probe.js";

/** A parent that answers as `answers` says, one probe after another (then keeps the last answer). */
function scriptedParent(answers: boolean[]): ParentProbe & { probes: number; closed: boolean } {
  return {
    probes: 0,
    closed: false,
    probe() {
      const ok = answers[Math.min(this.probes, answers.length - 1)]!;
      this.probes++;
      return Promise.resolve(ok);
    },
    close() {
      this.closed = true;
    },
  };
}

// The watch unrefs its timers (a watch must never keep a daemon alive); keep this test process up.
const keepAlive = setInterval(() => undefined, 1000);
t.teardown(() => clearInterval(keepAlive));

const opts = { healAfterMs: 40, probeIntervalMs: 5, probeTimeoutMs: 100 };

t.test("heal watch - a parent that keeps answering is taken back once it answered for healAfterMs", async (t) => {
  const parent = scriptedParent([true]);
  const w = new HealWatch(parent, opts);
  const forMs = await new Promise<number>((resolve) => w.start("127.0.0.1:1", () => true, resolve));
  t.ok(forMs >= opts.healAfterMs, `answered for ${forMs} ms`);
  t.ok(parent.probes >= 2, "it took more than one answer");
  w.close();
  t.ok(parent.closed, "close() closes the prober");
});

t.test("heal watch - a miss starts the count again", async (t) => {
  // Answers, misses once, then answers: the heal is measured from the first answer after the miss.
  const parent = scriptedParent([true, true, false, true]);
  const w = new HealWatch(parent, { ...opts, healAfterMs: 20 });
  const forMs = await new Promise<number>((resolve) => w.start("127.0.0.1:1", () => true, resolve));
  // Without the restart, the first answer after the miss (probe 4) would heal at once.
  t.ok(parent.probes > 4, `healed only after answers that followed the miss (${parent.probes} probes)`);
  t.ok(forMs >= 20);
  w.close();
});

t.test("heal watch - once the node is no longer away, the watch ends without a heal", async (t) => {
  const parent = scriptedParent([true]);
  const w = new HealWatch(parent, opts);
  let away = true;
  let healed = false;
  w.start("127.0.0.1:1", () => away, () => (healed = true));
  await new Promise((r) => setTimeout(r, 12));
  away = false;
  const probesThen = parent.probes;
  await new Promise((r) => setTimeout(r, 80));
  t.notOk(healed, "no heal after the node stopped being away");
  t.ok(parent.probes <= probesThen + 1, "probing stopped");
  w.close();
});

t.test("heal watch - stop() cancels a scheduled probe", async (t) => {
  const parent = scriptedParent([true]);
  const w = new HealWatch(parent, opts);
  w.start("127.0.0.1:1", () => true, () => t.fail("healed after stop()"));
  w.stop();
  await new Promise((r) => setTimeout(r, 60));
  t.equal(parent.probes, 0);
});

t.test("heal watch - a hold (a namesake took the planned parent) defers every probe past it, across stop()", async (t) => {
  const parent = scriptedParent([true]);
  const w = new HealWatch(parent, opts);
  w.holdUntil(Date.now() + 150);
  w.holdUntil(Date.now() + 10); // an earlier hold never shortens one in force
  t.ok(w.heldMs() > 100, "held");
  w.stop(); // a failover stops the watch; the hold stays
  let healedAt = 0;
  w.start("127.0.0.1:1", () => true, () => (healedAt = Date.now()));
  await new Promise((r) => setTimeout(r, 100));
  t.equal(parent.probes, 0, "no probe while held");
  await new Promise((r) => setTimeout(r, 200));
  t.ok(parent.probes > 0 && healedAt > 0, "probed and healed once the hold ran out");
  t.equal(w.heldMs(), 0);
  w.close();
});
