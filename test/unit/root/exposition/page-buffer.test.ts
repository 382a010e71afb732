import t from "tap";
import { gunzipSync } from "node:zlib";
import { PageBuffer } from "../../../../src/root/exposition/page-buffer.js";
import { SharedPage } from "../../../../src/root/exposition/shared-page.js";
import type { PageParts } from "../../../../src/root/exposition/exposition-cache.js";

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

t.test("shared page - overlapping scrapes of one format share one page and one gzip; the other format waits; a stuck client is not waited for", async (t) => {
  let builds = 0;
  const build = (text: string) => async (): Promise<PageParts> => {
    builds++;
    return { parts: parts(text), done: () => undefined };
  };
  const shared = new SharedPage(1000, 200);
  const a = await shared.acquire("text", build("page A\n"), 0);
  const b = await shared.acquire("text", build("page B\n"), 500);
  t.equal(builds, 1, "the second scrape, while the first is in flight, builds nothing");
  t.equal(b.body.toString(), "page A\n");
  t.ok(a.body.buffer === b.body.buffer, "one page in memory, not two");
  const [za, zb] = await Promise.all([a.gzip(1), b.gzip(1)]);
  t.ok(za === zb && gunzipSync(za).toString() === "page A\n", "compressed once, for both");

  let waited = false;
  const om = shared.acquire("openmetrics", build("page OM\n")).then((h) => ((waited = true), h));
  await new Promise((r) => setTimeout(r, 20));
  t.notOk(waited, "the other format waits while the text page is in flight");
  a.release();
  b.release();
  const c = await om;
  t.equal(c.body.toString(), "page OM\n");
  t.ok(c.body.buffer === a.body.buffer, "and then reuses its memory");

  // c is never released (a client that does not read): after maxWaitMs a scrape gets its own page.
  const d = await shared.acquire("text", build("page D\n"));
  t.equal(d.body.toString(), "page D\n");
  t.equal(c.body.toString(), "page OM\n", "a page of its own: the stuck one's bytes are untouched");
  d.release();
  const late = await shared.acquire("openmetrics", build("late\n"), Date.now() + 5000);
  t.equal(late.body.toString(), "late\n", "a page assembled over maxAgeMs ago is not handed out again");
  late.release();
  c.release();
});
