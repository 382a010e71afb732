import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import fc from "fast-check";
import t from "tap";
import { DiskQueue, MemoryQueue, type QueuedRequest, type RequestQueue } from "../../../../src/root/outputs/remote-write/request-queue.js";

const request = (n: number, size: number): QueuedRequest => ({ body: Buffer.alloc(size, n % 251), samples: n % 7, newestMs: n, stale: n % 5 === 0, v2: n % 3 === 0 });

type Op = { k: "push"; size: number } | { k: "ack" } | { k: "drop"; inFlight: boolean } | { k: "reopen" };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant("push" as const), size: fc.integer({ min: 0, max: 3000 }) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("ack" as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("drop" as const), inFlight: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("reopen" as const) }) },
);

t.test("request queue - on disk: in order, across restarts; a drop loses whole oldest segments, counted; everything else comes out once", async (t) => {
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 120 }), (ops) => {
      const dir = mkdtempSync(join(tmpdir(), "banyan-queue-"));
      try {
        let q: RequestQueue = new DiskQueue(dir, 0, 8 * 1024);
        let next = 1;
        let pushedSamples = 0;
        let droppedSamples = 0;
        const out: QueuedRequest[] = [];
        const take = (): void => {
          const h = q.head();
          if (h === null) return;
          out.push(h);
          q.ack();
        };
        for (const o of ops) {
          if (o.k === "push") {
            const r = request(next++, o.size);
            q.push(r);
            pushedSamples += r.samples;
          } else if (o.k === "ack") take();
          else if (o.k === "drop") {
            if (o.inFlight) q.head();
            const before = q.samples;
            const d = q.dropOldest(o.inFlight);
            droppedSamples += d;
            assert.equal(q.samples, before - d, "the samples dropped are the ones reported");
          } else {
            const [length, samples, bytes] = [q.length, q.samples, q.bytes];
            q.close();
            q = new DiskQueue(dir, 0, 8 * 1024);
            assert.deepEqual([q.length, q.samples, q.bytes], [length, samples, bytes], "a restart keeps what was queued");
          }
        }
        while (q.head() !== null) take();
        assert.equal(q.bytes, 0);
        const numbers = out.map((r) => r.newestMs);
        assert.ok(numbers.every((n, k) => k === 0 || n > numbers[k - 1]!), "sent in the order pushed, none twice");
        for (const r of out) assert.ok(r.body.equals(request(r.newestMs, r.body.length).body) && r.samples === r.newestMs % 7 && r.stale === (r.newestMs % 5 === 0) && r.v2 === (r.newestMs % 3 === 0), "each record as it was written");
        assert.equal(out.reduce((s, r) => s + r.samples, 0) + droppedSamples, pushedSamples, "every sample sent or counted as dropped");
        q.close();
        assert.ok(readdirSync(dir).filter((f) => f.endsWith(".seg")).length <= 1, "read segments are deleted");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }),
    {
      numRuns: 300,
      // Found by this property: a queue emptied by a drop, then reopened twice, read its new segment as consumed.
      examples: [[[{ k: "push", size: 0 }, { k: "drop", inFlight: false }, { k: "reopen" }, { k: "push", size: 0 }, { k: "reopen" }, { k: "push", size: 0 }]]],
    },
  );
  t.pass("held for every sequence tried (a failure throws with the shrunk sequence)");
});

t.test("request queue - in memory: FIFO, and a drop spares the head in flight", async (t) => {
  const q = new MemoryQueue();
  for (let n = 1; n <= 3; n++) q.push(request(n, 10));
  t.equal(q.dropOldest(true), 2 % 7, "the second goes while the first is in flight");
  t.equal(q.head()?.newestMs, 1);
  q.ack();
  t.equal(q.head()?.newestMs, 3);
  t.equal(q.bytes, 10);
});
