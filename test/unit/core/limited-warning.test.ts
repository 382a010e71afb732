import { Writable } from "node:stream";
import { pino } from "pino";
import t from "tap";
import { EventSummary, LimitedWarning } from "../../../src/core/logger.js";

t.test("limited warning - a flood becomes one line per window, and the next line counts what it left out", async (t) => {
  const lines: { msg: string; alsoSince?: number; origin?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  });
  const w = new LimitedWarning(pino({ level: "warn" }, sink), "frame refused", 1000);
  for (let ms = 0; ms < 2500; ms += 10) w.warn({ origin: `n${ms}` }, ms);
  await new Promise((r) => setImmediate(r));
  t.same(lines.map((l) => [l.origin, l.alsoSince ?? 0]), [["n0", 0], ["n1000", 99], ["n2000", 99]], "250 refusals: 3 lines, 198 counted");
  t.match(lines[1]!.msg, /frame refused \(and 99 more since the last line\)/);
});

t.test("event summary - per-node events become one line per flush with the count and the first names", async (t) => {
  const lines: { msg: string; count: number; first: string[] }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as (typeof lines)[number]);
      done();
    },
  });
  const s = new EventSummary(pino({ level: "info" }, sink), "nodes down", "warn", 3);
  s.flush();
  for (let k = 0; k < 5000; k++) s.note(`n${k}`);
  s.flush();
  s.note("x");
  s.flush();
  s.flush();
  await new Promise((r) => setImmediate(r));
  t.equal(lines.length, 2, "5,001 events, two flushes with something to say: two lines");
  t.same(lines[0]!.first, ["n0", "n1", "n2"]);
  t.equal(lines[0]!.count, 5000);
  t.equal(lines[0]!.msg, "nodes down: 5000 (n0, n1, n2, and 4997 more)");
  t.equal(lines[1]!.msg, "nodes down: 1 (x)");
});
