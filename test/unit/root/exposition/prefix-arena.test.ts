import fc from "fast-check";
import t from "tap";
import { PrefixArena } from "../../../../src/root/exposition/prefix-arena.js";

t.test("prefix arena - every live prefix reads back as set, and churn never grows it past a few times its peak of live bytes", async (t) => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({ k: fc.constant("set" as const), id: fc.integer({ min: 0, max: 300 }), text: fc.string({ unit: "grapheme", minLength: 1, maxLength: 80 }) }),
          fc.record({ k: fc.constant("drop" as const), id: fc.integer({ min: 0, max: 300 }) }),
          fc.record({ k: fc.constant("clear" as const) }),
          fc.record({ k: fc.constant("trim" as const) }),
        ),
        { minLength: 1, maxLength: 400 },
      ),
      (steps) => {
        const arena = new PrefixArena();
        const model = new Map<number, Buffer>();
        let peak = 0;
        let longest = 0;
        for (const s of steps) {
          if (s.k === "set") {
            const b = Buffer.from(s.text, "utf8");
            model.set(s.id, b);
            longest = Math.max(longest, b.length);
            arena.set(s.id, s.text);
          } else if (s.k === "drop") {
            model.delete(s.id);
            arena.drop(s.id);
          } else if (s.k === "clear") {
            model.clear();
            arena.clear();
          } else arena.trim();
          let live = 0;
          for (const b of model.values()) live += b.length;
          peak = Math.max(peak, live);
          if (arena.capacity > 4 * peak + 2 * longest + 512) throw new Error(`capacity ${arena.capacity} for a peak of ${peak} live bytes`);
        }
        for (let id = 0; id <= 300; id++) {
          const want = model.get(id);
          if (want === undefined) {
            if (arena.length(id) !== 0) throw new Error(`id ${id} dropped but has ${arena.length(id)} bytes`);
            continue;
          }
          const out = Buffer.alloc(want.length + 4, 0x7e);
          const n = arena.copy(id, out, 2);
          if (n !== want.length || arena.length(id) !== want.length || !out.subarray(2, 2 + n).equals(want) || out[1] !== 0x7e || out[2 + n] !== 0x7e) throw new Error(`id ${id}: ${out.toString()} vs ${want.toString()}`);
        }
      },
    ),
    { numRuns: 300 },
  );
});

t.test("prefix arena - a keyframe's restatement is trimmed to its size, a forgotten origin holds nothing", async (t) => {
  const arena = new PrefixArena();
  for (let id = 0; id < 1000; id++) arena.set(id, `node_cpu_seconds_total{cpu="${id}",mode="idle",instance="n1"} `);
  const used = [...Array(1000).keys()].reduce((a, id) => a + Buffer.byteLength(`node_cpu_seconds_total{cpu="${id}",mode="idle",instance="n1"} `), 0);
  t.ok(arena.capacity >= used);
  arena.trim();
  t.ok(arena.capacity <= used + (used >>> 2) + 256, `trimmed: ${arena.capacity} bytes for ${used}`);
  arena.release();
  t.equal(arena.capacity, 0);
  t.equal(arena.length(5), 0);
});
