import { DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, formatJobCard, jobCard, mergeParts, type JobPart, type NodePart } from "../src/root/fleet/index.js";

/**
 * What a job's report card costs a root: a job of N nodes (4 GPUs each) spread over 8 roots, its
 * parts merged and its card made, and the bytes of the parts that cross between roots.
 *
 *   node dist/bench/job-card-figures.js [nodes] [rounds]
 */
const nodes = Number(process.argv[2] ?? 1000);
const rounds = Number(process.argv[3] ?? 200);
const now = Date.now();

function node(k: number): NodePart {
  return {
    node: `n${String(k).padStart(5, "0")}`,
    started_at_s: now / 1000 - 3600,
    cpu_seconds: 3600 * 64 * (0.5 + ((k * 7919) % 100) / 200),
    cpus_allocated: 64,
    memory_peak_bytes: 2 ** 37 + k,
    memory_limit_bytes: 2 ** 38,
    io_read_bytes: 2 ** 30,
    io_written_bytes: 2 ** 29,
    gpus: [0, 1, 2, 3].map((g) => ({ gpu: String(g), busy_seconds: (k + g) % 97 === 0 ? 0 : 3000, memory_peak_bytes: 2 ** 34 })),
    energy_joules: { gpu: 4 * 300 * 3600, cpu: 2 * 200 * 3600, dram: 30 * 3600 },
  };
}
const all = Array.from({ length: nodes }, (_, k) => node(k));
const parts: JobPart[] = Array.from({ length: 8 }, (_, r) => ({
  job_id: "4242",
  user: "alice",
  account: "proj",
  partition: "gpu",
  running: false,
  first_seen: new Date(now - 3_600_000).toISOString(),
  last_seen: new Date(now).toISOString(),
  time_limit_s: 4 * 3600,
  nodes_expected: nodes,
  nodelist: `n[00000-${String(nodes - 1).padStart(5, "0")}]`,
  nodes: all.filter((_, k) => k % 8 === r),
  roots: [`r${r}`],
}));
const bytes = parts.reduce((a, p) => a + JSON.stringify(p).length, 0);
// Warm up, then time merge + card, and the parse of the parts a root receives.
for (let i = 0; i < 20; i++) jobCard(mergeParts(parts)!, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, now);
const texts = parts.map((p) => JSON.stringify(p));
let t0 = performance.now();
for (let i = 0; i < rounds; i++) jobCard(mergeParts(parts)!, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, now);
const cardMs = (performance.now() - t0) / rounds;
t0 = performance.now();
for (let i = 0; i < rounds; i++) for (const t of texts) JSON.parse(t);
const parseMs = (performance.now() - t0) / rounds;
const card = jobCard(mergeParts(parts)!, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, now);
const out = { nodes, gpus: nodes * 4, merge_and_card_ms: Number(cardMs.toFixed(3)), parse_parts_ms: Number(parseMs.toFixed(3)), parts_bytes: bytes, card_bytes: JSON.stringify(card).length, notes: card.notes.map((n) => n.rule) };
process.stdout.write(JSON.stringify(out, null, 2) + "\n" + formatJobCard(card));
