import { Writable } from "node:stream";
import { pino } from "pino";
import t from "tap";
import { LimitedWarning } from "../../../src/core/logger.js";

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
