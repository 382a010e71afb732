import { writeFileSync } from "node:fs";

/**
 * One fixed-work-quantum loop (FWQ, as in the ASC Sequoia noise benchmarks): the same small piece
 * of work over and over, each timed; on a quiet core every quantum takes the same time, and the
 * excess of one over the fastest is a detour — the time something else (the kernel, a daemon, the
 * agent) took the core. Run pinned to one core by its parent (taskset). Allocates nothing while it
 * runs: its own garbage collector must not be the noise it measures.
 *
 *   node dist/bench/fwq-worker.js <seconds> <out.json>
 *
 * Writes a histogram of quantum durations in microseconds (1 µs buckets up to 100 ms) and counts.
 */
const seconds = Number(process.argv[2] ?? 10);
const out = process.argv[3] ?? "/dev/stdout";
const BUCKETS = 100_000;
const hist = new Uint32Array(BUCKETS + 1);
/** The work: a dependent integer recurrence the compiler cannot remove (about 20 µs on a 2020s core). */
const ITERATIONS = 40_000;
let sink = 1;
const quantum = (): void => {
  let x = sink;
  for (let i = 0; i < ITERATIONS; i++) x = (x * 1_103_515_245 + 12_345) | 0;
  sink = x;
};
for (let i = 0; i < 2000; i++) quantum(); // compiled before timing starts
const endNs = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
let quanta = 0;
let prev = process.hrtime.bigint();
while (prev < endNs) {
  quantum();
  const now = process.hrtime.bigint();
  const us = Number(now - prev) / 1000;
  hist[Math.min(BUCKETS, Math.floor(us))]!++;
  quanta++;
  prev = now;
}
const counts: [number, number][] = [];
for (let i = 0; i <= BUCKETS; i++) if (hist[i]! > 0) counts.push([i, hist[i]!]);
writeFileSync(out, JSON.stringify({ quanta, counts, sink }));
