import fc from "fast-check";
import t from "tap";
import { OriginRoutes } from "../../../src/wire/origin-routes.js";

t.test("origin routes - bounded per stream, newest frame kept in place, forgotten with their stream", async (t) => {
  const r = new OriginRoutes<string>(2);
  t.ok(r.take("a", "s1") && r.take("b", "s1"), "two origins on s1");
  t.notOk(r.take("c", "s1"), "a third is refused on s1");
  t.equal(r.streamOf("c"), undefined, "and not routed");
  t.ok(r.take("a", "s1"), "an origin it carries already is still taken");
  t.same([...r.framed()], [], "no frame yet: nothing to announce as leaving");
  r.saw("a", 5n, 3n);
  r.saw("a", 5n, 2n);
  r.saw("zzz", 1n, 1n);
  t.same([...r.framed()], [{ origin: "a", stream: "s1", epoch: 5n, seq: 3n }], "the newest of a's frames; an unrouted origin is ignored");
  t.ok(r.take("a", "s2"), "a moves to s2");
  r.forget("s1");
  t.equal(r.streamOf("a"), "s2", "a arrives on s2: kept when s1 goes");
  t.equal(r.streamOf("b"), undefined, "b went with s1");
  t.same([...r.framed()], [{ origin: "a", stream: "s2", epoch: 5n, seq: 3n }], "a's newest frame kept across its move");
});

t.test("origin routes - over random frames, the newest (epoch, seq) per origin is what framed() reports", async (t) => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom("a", "b", "c"), fc.bigInt({ min: 1n, max: 4n }), fc.bigInt({ min: 1n, max: 50n })), { maxLength: 60 }), (frames) => {
      const r = new OriginRoutes<number>(10);
      const newest = new Map<string, [bigint, bigint]>();
      for (const [o, e, s] of frames) {
        r.take(o, 1);
        r.saw(o, e, s);
        const n = newest.get(o);
        if (n === undefined || e > n[0] || (e === n[0] && s > n[1])) newest.set(o, [e, s]);
      }
      const got = new Map([...r.framed()].map((x) => [x.origin, [x.epoch, x.seq] as [bigint, bigint]]));
      return got.size === newest.size && [...newest].every(([o, v]) => got.get(o)![0] === v[0] && got.get(o)![1] === v[1]);
    }),
  );
});
