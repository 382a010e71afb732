import t from "tap";
import { PageBuffer } from "../../../src/root/page-buffer.js";

const parts = (...texts: string[]): Buffer[] => texts.map((x) => Buffer.from(x));

t.test("page buffer - pages come out whole; a page in flight is never overwritten; the memory serves the next scrape", async (t) => {
  const pages = new PageBuffer();
  const a = pages.assemble(parts("# TYPE m gauge\n", "m 1\n", "m 2\n"));
  t.equal(a.body.toString(), "# TYPE m gauge\nm 1\nm 2\n");
  const b = pages.assemble(parts("other\n"));
  t.equal(b.body.toString(), "other\n", "a second scrape while the first is being sent…");
  t.equal(a.body.toString(), "# TYPE m gauge\nm 1\nm 2\n", "…leaves the first page as it was");
  b.release();
  const f = pages.assemble(parts("third\n"));
  t.equal(a.body.toString(), "# TYPE m gauge\nm 1\nm 2\n", "the second one done, the first still in flight: still untouched");
  f.release();
  a.release();
  a.release(); // twice: no effect
  const c = pages.assemble(parts("m 3\n"));
  t.equal(c.body.toString(), "m 3\n");
  t.ok(c.body.buffer === a.body.buffer && c.body.byteOffset === a.body.byteOffset, "the next scrape reuses the kept memory");
  c.release();
  const d = pages.assemble([Buffer.alloc(20_000, 97)]);
  d.release();
  const e = pages.assemble([Buffer.alloc(19_000, 98)]);
  t.ok(e.body.buffer === d.body.buffer && e.body[0] === 98, "also past Node's small-buffer pool");
  e.release();
  const big = pages.assemble([Buffer.alloc(300_000, 120)]);
  t.equal(big.body.length, 300_000, "a larger page grows the kept buffer");
  big.release();
  const small = pages.assemble(parts("x\n"));
  t.not(small.body.buffer, big.body.buffer, "a page far smaller than the kept buffer shrinks it");
  t.equal(pages.assemble([]).body.length, 0, "an empty page (everything in flight or not) is empty");
});
