import t from "tap";
import { OneShotTimer } from "../../../src/core/one-shot-timer.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Waits for `cond`, 10 s at most (a loaded machine may run a 5 ms timer late; never a minute late). */
const until = async (cond: () => boolean): Promise<void> => {
  for (const end = Date.now() + 10_000; !cond() && Date.now() < end; ) await sleep(5);
};

t.test("one-shot timer - armed at most once at a time, fires once, and a clear means it never fires", async (t) => {
  let fired = 0;
  const timer = new OneShotTimer(() => fired++);
  t.notOk(timer.armed);
  const before = Date.now();
  timer.arm(5);
  timer.arm(60_000);
  t.ok(timer.armed);
  t.ok(timer.dueAtMs >= before + 5 && timer.dueAtMs < before + 1000, "due at the first arm's time: the second was a no-op");
  await until(() => fired > 0);
  await sleep(20);
  t.equal(fired, 1, "fired once");
  t.notOk(timer.armed, "not armed after firing");
  timer.arm(5);
  timer.clear();
  t.notOk(timer.armed);
  await sleep(50);
  t.equal(fired, 1, "a cleared timer never fires");
  // Armed again from inside its own callback: the callback sees it disarmed.
  let again = 0;
  const self: OneShotTimer = new OneShotTimer(() => {
    if (again++ === 0) self.arm(1);
  });
  self.arm(1);
  await until(() => again >= 2);
  t.equal(again, 2, "re-armed from its own callback, it fires again");
});
