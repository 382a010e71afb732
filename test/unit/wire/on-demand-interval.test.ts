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
