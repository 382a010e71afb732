import t from "tap";
import { OnDemandInterval } from "../../../src/wire/on-demand-interval.js";

const until = async (cond: () => boolean): Promise<void> => {
  while (!cond()) await new Promise((r) => setTimeout(r, 5));
};

t.test("on-demand interval - runs while busy, stops itself when idle, wakes again, and stays closed", async (t) => {
  let runs = 0;
  let pending = 3;
  const timer = new OnDemandInterval(5, () => void (runs++, pending > 0 && pending--), () => pending > 0);
  t.notOk(timer.running, "not running before a wake");
  timer.wake();
  timer.wake();
  t.ok(timer.running);
  await until(() => !timer.running);
  t.equal(runs, 3, "it ran until nothing was pending, then stopped");
  pending = 1;
  timer.wake();
  await until(() => !timer.running);
  t.equal(runs, 4, "woken again, it ran once more");
  timer.close();
  pending = 5;
  timer.wake();
  t.notOk(timer.running, "closed: a wake starts nothing");
});

t.test("on-demand interval - settle stops it at once when nothing is left, not while something is; the first run may come later than the period", async (t) => {
  let runs = 0;
  let pending = true;
  const timer = new OnDemandInterval(5, () => void runs++, () => pending);
  timer.wake(60_000);
  t.ok(timer.running, "woken with a long first delay");
  timer.settle();
  t.ok(timer.running, "settle leaves it running while there is something to watch");
  pending = false;
  timer.settle();
  t.notOk(timer.running, "settle stops it when there is nothing left");
  t.equal(runs, 0, "it never ran: the long first delay had not passed");
  pending = true;
  timer.wake(1);
  await until(() => runs >= 2);
  t.ok(timer.running, "after its first run it goes on at its period while busy");
  pending = false;
  await until(() => !timer.running);
  timer.close();
});

t.test("on-demand interval - a wake asking for a sooner run brings a waiting timer forward; one asking for a later run does not put it back", async (t) => {
  let runs = 0;
  let pending = true;
  const timer = new OnDemandInterval(5, () => void (runs++, (pending = false)), () => pending);
  timer.wake(60_000);
  timer.wake(120_000);
  timer.wake();
  // Its period is 5 ms; without being brought forward it would wait a minute.
  await Promise.race([until(() => runs > 0), new Promise((r) => setTimeout(r, 10_000).unref())]);
  t.equal(runs, 1, "ran at the period, not after a minute");
  await until(() => !timer.running);
  timer.close();
});
