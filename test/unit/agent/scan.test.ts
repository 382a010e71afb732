import fc from "fast-check";
import t from "tap";
import { fieldSpans, forEachLine, numberAt } from "../../../src/agent/collectors/scan.js";

t.test("scan - fields and numbers parsed in place agree with split and Number over random lines", async (t) => {
  const starts = new Int32Array(64);
  const ends = new Int32Array(64);
  fc.assert(
    fc.property(fc.array(fc.array(fc.oneof(fc.nat(), fc.constantFrom("cpu0", "kB", "-3", "1.5e3", "0x1f")), { maxLength: 20 }), { maxLength: 10 }), fc.constantFrom(" ", "  ", "\t"), (rows, sep) => {
      const text = rows.map((r) => sep + r.join(sep)).join("\n");
      const lines: string[][] = [];
      forEachLine(text, (s, e) => {
        const n = fieldSpans(text, s, e, starts, ends);
        lines.push(Array.from({ length: n }, (_, k) => text.slice(starts[k]!, ends[k]!)));
        for (let k = 0; k < n; k++) {
          const want = Number(text.slice(starts[k]!, ends[k]!));
          const got = numberAt(text, starts[k]!, ends[k]!);
          if (!(Object.is(want, got) || (Number.isNaN(want) && Number.isNaN(got)))) throw new Error(`${text.slice(starts[k]!, ends[k]!)}: ${got} ≠ ${want}`);
        }
      });
      // forEachLine gives no line for an empty text (split gives one empty line).
      const want = (text === "" ? [] : text.split("\n")).map((l) => l.split(/[ \t]+/).filter((x) => x !== ""));
      return JSON.stringify(lines) === JSON.stringify(want);
    }),
  );
});
