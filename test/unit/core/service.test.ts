import fc from "fast-check";
import { pino } from "pino";
import t from "tap";
import { ServiceList, serviceOf, type Service } from "../../../src/core/service.js";

/** A log that keeps its lines. */
function recordingLog(): { log: ReturnType<typeof pino>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

t.test("services start in order, take reloads in order, and stop in reverse", async (t) => {
  const calls: string[] = [];
  const list = new ServiceList<number>(recordingLog().log);
  const svc = (name: string): Service<number> => ({ name, start: () => void calls.push(`start ${name}`), reload: (c) => void calls.push(`reload ${name} ${c}`), stop: async () => void calls.push(`stop ${name}`) });
  list.add(svc("a"), svc("b"));
  list.add({ name: "no hooks" }, svc("c"));
  await list.start();
  list.reload(7);
  await list.stop();
  await list.stop();
  t.same(calls, ["start a", "start b", "start c", "reload a 7", "reload b 7", "reload c 7", "stop c", "stop b", "stop a"], "a second stop stops nothing");
});

t.test("serviceOf hands a part its own slice of the daemon's config", async (t) => {
  const seen: string[] = [];
  const list = new ServiceList<{ events: string; other: number }>(recordingLog().log);
  list.add(serviceOf({ name: "sinks", reload: (c: string) => void seen.push(c) }, (c: { events: string }) => c.events));
  await list.start();
  list.reload({ events: "new", other: 1 });
  t.same(seen, ["new"]);
});

t.test("a service that fails to start stops those before it, in reverse, and its error is thrown", async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 8 }), fc.nat(), fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }), async (n, failAt, stopFails) => {
      const k = failAt % n;
      const calls: string[] = [];
      const { log, lines } = recordingLog();
      const list = new ServiceList<void>(log);
      for (let i = 0; i < n; i++) {
        list.add({
          name: `s${i}`,
          start: async () => {
            if (i === k) throw new Error(`s${i} cannot start`);
            calls.push(`start s${i}`);
          },
          stop: () => {
            calls.push(`stop s${i}`);
            if (stopFails[i]) throw new Error(`s${i} stuck`);
          },
        });
      }
      let thrown: Error | null = null;
      try {
        await list.start();
      } catch (err) {
        thrown = err as Error;
      }
      const started = Array.from({ length: k }, (_, i) => i);
      t.equal(thrown?.message, `s${k} cannot start`);
      t.same(calls, [...started.map((i) => `start s${i}`), ...started.reverse().map((i) => `stop s${i}`)], "only the started ones stop, every one of them, in reverse");
      t.equal(lines.filter((l) => l.level === 40).length, started.filter((i) => stopFails[i]).length, "each failed stop logged once, the rest still stopped");
      list.reload();
      await list.stop();
      t.equal(calls.length, 2 * k, "nothing started is left to stop or reload");
    }),
    { numRuns: 100 },
  );
});
