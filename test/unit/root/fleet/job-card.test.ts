import fc from "fast-check";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../../src/core/logger.js";
import { EventLog } from "../../../../src/root/events/event-log.js";
import { DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, jobCard, mergeParts, type JobPart, type JobRule, type NodePart } from "../../../../src/root/fleet/job-card.js";
import { formatJobCard } from "../../../../src/root/fleet/job-card-text.js";
import { JobReports, jobsConfigSchema, type PeerRoot } from "../../../../src/root/fleet/job-reports.js";
import type { RootJobs } from "../../../../src/root/fleet/root-jobs.js";
import { firstHost } from "../../../../src/topology/hostlist.js";

const T0 = Date.parse("2026-12-08T00:00:00Z");

const nodeArb = (name: string): fc.Arbitrary<NodePart> =>
  fc.record({
    node: fc.constant(name),
    started_at_s: fc.option(fc.integer({ min: T0 / 1000 - 7200, max: T0 / 1000 }), { nil: null }),
    cpu_seconds: fc.option(fc.double({ min: 0, max: 1e6, noNaN: true }), { nil: null, freq: 8 }),
    cpus_allocated: fc.option(fc.integer({ min: 1, max: 256 }), { nil: null, freq: 8 }),
    memory_peak_bytes: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
    memory_limit_bytes: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: null }),
    io_read_bytes: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
    io_written_bytes: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
    gpus: fc.uniqueArray(fc.record({ gpu: fc.constantFrom("0", "1", "2", "3"), busy_seconds: fc.option(fc.double({ min: 0, max: 1e5, noNaN: true }), { nil: null, freq: 8 }), memory_peak_bytes: fc.option(fc.integer({ min: 0, max: 2 ** 36 }), { nil: null }) }), { maxLength: 4, selector: (g) => g.gpu }),
    energy_joules: fc.dictionary(fc.constantFrom("gpu", "cpu", "dram"), fc.double({ min: 0, max: 1e9, noNaN: true }), { maxKeys: 3 }),
  });

/** A job on 1-12 nodes, and a split of them over up to 4 roots. */
const jobArb = fc.integer({ min: 1, max: 12 }).chain((n) =>
  fc.record({
    nodes: fc.tuple(...Array.from({ length: n }, (_, k) => nodeArb(`n${String(k).padStart(2, "0")}`))),
    rootOf: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: n, maxLength: n }),
    running: fc.boolean(),
    timeLimit: fc.option(fc.integer({ min: 60, max: 86_400 }), { nil: null }),
    partition: fc.constantFrom("debug", "gpu"),
  }),
);

function partOf(nodes: readonly NodePart[], running: boolean, timeLimit: number | null, partition: string, roots: string[]): JobPart {
  return { job_id: "9", user: "u", account: "a", partition, running, first_seen: new Date(T0 - 3_600_000).toISOString(), last_seen: new Date(T0).toISOString(), time_limit_s: timeLimit, nodes_expected: null, nodelist: null, nodes, roots };
}

t.test("job card - the card of parts merged from several roots is the card of one root holding every node", async (t) => {
  fc.assert(
    fc.property(jobArb, ({ nodes, rootOf, running, timeLimit, partition }) => {
      const whole = partOf(nodes, running, timeLimit, partition, ["r0"]);
      const parts = [0, 1, 2, 3]
        .map((r) => partOf(nodes.filter((_, k) => rootOf[k] === r), running, timeLimit, partition, [`r${r}`]))
        .filter((p) => p.nodes.length > 0);
      const merged = mergeParts(parts)!;
      const a = jobCard(whole, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, T0);
      const b = jobCard(merged, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, T0);
      return JSON.stringify({ ...a, roots: [] }) === JSON.stringify({ ...b, roots: [] });
    }),
    { numRuns: 300 },
  );
  t.pass("300 random jobs and splits");
});

t.test("job card - figures: known or null, never a part read as the whole; the score in 0-100; notes exactly where their rule holds", async (t) => {
  fc.assert(
    fc.property(jobArb, fc.record({ cpu: fc.double({ min: 0, max: 10, noNaN: true }), gpu: fc.double({ min: 0, max: 10, noNaN: true }), memory: fc.double({ min: 0, max: 10, noNaN: true }), time: fc.double({ min: 0, max: 10, noNaN: true }) }), fc.double({ min: -10, max: 200, noNaN: true }), ({ nodes, running, timeLimit, partition }, weights, threshold) => {
      const part = partOf(nodes, running, timeLimit, partition, ["r0"]);
      const rules: JobRule[] = [
        { name: "r", metric: "cpu_efficiency_percent", condition: "<", threshold, minDurationS: 0, partitions: [], endedOnly: false, message: "{value} < {threshold}", severity: "warning" },
        { name: "g", metric: "gpu_utilization_percent", condition: ">=", threshold, minDurationS: 0, partitions: ["gpu"], endedOnly: true, message: "g", severity: "info" },
      ];
      const c = jobCard(part, rules, weights, T0);
      const m = c.metrics;
      if (nodes.some((n) => n.cpu_seconds === null) !== (c.cpu.seconds === null)) return false;
      if (m.score !== null && (m.score < 0 || m.score > 100)) return false;
      if (m.score === null && Object.keys(c.score_parts).length > 0 && Object.values(c.score_parts).some((p) => p.weight > 0)) return false;
      for (const p of Object.values(c.score_parts)) if (p.value < 0 || p.value > 1 || p.weight <= 0) return false;
      const cpuNote = c.notes.some((n) => n.rule === "r");
      if (cpuNote !== (m.cpu_efficiency_percent !== null && m.cpu_efficiency_percent < threshold)) return false;
      const gpuNote = c.notes.some((n) => n.rule === "g");
      if (gpuNote !== (partition === "gpu" && !running && m.gpu_utilization_percent !== null && m.gpu_utilization_percent >= threshold)) return false;
      if (m.idle_gpus !== null && m.idle_gpus !== nodes.flatMap((n) => n.gpus).filter((g) => g.busy_seconds === 0).length) return false;
      if (m.time_used_percent !== null && running) return false;
      // The table is written whatever the card holds.
      return formatJobCard(c).startsWith(`Job 9 (u, account a, partition ${partition}): ${c.state}`);
    }),
    { numRuns: 500 },
  );
  t.pass("500 random jobs, weights and thresholds");
});

t.test("job card - one job by hand", async (t) => {
  const node = (name: string, cpu: number, busy: number[]): NodePart => ({
    node: name,
    started_at_s: T0 / 1000 - 3600,
    cpu_seconds: cpu,
    cpus_allocated: 4,
    memory_peak_bytes: 2 ** 30,
    memory_limit_bytes: 2 ** 32,
    io_read_bytes: 100,
    io_written_bytes: 50,
    gpus: busy.map((b, k) => ({ gpu: String(k), busy_seconds: b, memory_peak_bytes: 2 ** 30 })),
    energy_joules: { gpu: 3.6e6, cpu: 1.8e6 },
  });
  const part = { ...partOf([node("a", 4 * 3600, [3600, 0]), node("b", 3600, [1800, 0])], false, 4 * 3600, "gpu", ["r1"]), nodes_expected: 3 };
  const c = jobCard(part, DEFAULT_JOB_RULES, DEFAULT_SCORE_WEIGHTS, T0);
  t.match(c.metrics, { elapsed_s: 3600, time_used_percent: 25, cpu_efficiency_percent: 62.5, memory_used_percent: 25, gpus: 4, idle_gpus: 2, gpu_utilization_percent: 37.5, homogeneity_percent: 40, io_read_bytes: 200, energy_joules: 10.8e6 });
  t.equal(c.energy.kwh, 3);
  t.equal(c.partial, true, "2 of 3 nodes");
  t.same(c.gpu.idle, ["a:1", "b:1"]);
  t.same(c.slowest_nodes[0], { node: "b", cpu_seconds: 3600 });
  // cpu 0.625×1 + gpu 0.375×3 + memory 0.25×0.5 + time 0.25×0.5 = 2.0 of 5 weight.
  t.equal(c.metrics.score, 40);
  t.same(c.notes.map((n) => n.rule), ["idle-gpus", "uneven-nodes"], "25 % of its time is not under 25 %; 37.5 % GPU is over 15 %");
  const text = formatJobCard(c);
  t.match(text, /ran 1 h 00 min of 4 h 00 min \(25 %\), on 2 of 3 nodes/);
  t.match(text, /partial: some of its nodes were not seen/);
  t.match(text, /Energy +3\.000 kWh \(gpu 2\.000, cpu 1\.000\)/);
  t.match(text, /! 2 of the job's GPUs were allocated and never used/);
});

t.test("firstHost - the first name of a hostlist without expanding it", async (t) => {
  t.equal(firstHost("n[0007-9000],m1"), "n0007");
  t.equal(firstHost("r[2-3]n[01-32]"), "r2n01");
  t.equal(firstHost("vm"), "vm");
  t.equal(firstHost("n[5,1-3]"), "n5", "Slurm's order, as written");
  t.equal(firstHost("n[x]"), undefined);
  t.equal(firstHost(""), undefined);
});

t.test("job reports - the verdict: made by the root of the first node only, partial when a root does not answer, cards bounded", async (t) => {
  const part = (id: string, nodes: string[], root: string): JobPart => ({ ...partOf(nodes.map((n) => ({ node: n, started_at_s: T0 / 1000 - 60, cpu_seconds: 10, cpus_allocated: 1, memory_peak_bytes: null, memory_limit_bytes: null, io_read_bytes: 0, io_written_bytes: 0, gpus: [], energy_joules: {} })), false, null, "debug", [root]), job_id: id, nodes_expected: 3, nodelist: "n[1-3]" });
  const listeners: ((c: "start" | "end", j: { job_id: string }) => void)[] = [];
  const mine = new Map<string, JobPart>([["1", part("1", ["n1"], "r1")], ["2", part("2", ["n1"], "r1")], ["3", part("3", ["n1"], "r1")]]);
  const jobs = { part: (id: string) => mine.get(id), onChange: (f: (typeof listeners)[number]) => void listeners.push(f) } as unknown as RootJobs;
  const events = new EventLog("r1", new Registry());
  const asked: string[] = [];
  const fetchPart = async (peer: PeerRoot, jobId: string): Promise<unknown> => {
    asked.push(`${peer.name}:${jobId}`);
    if (peer.name === "r3") throw new Error("connect ECONNREFUSED");
    return part(jobId, ["n2"], "r2");
  };
  const plan = { root: "r1", peers: [{ name: "r2", http: "h2:1" }, { name: "r3", http: "h3:1" }], rootOfNode: (n: string) => ({ n1: "r1", n2: "r2", n3: "r3" })[n] };
  const reports = new JobReports(jobs, events, jobsConfigSchema.parse({ reportsKept: 2, verdictDelayMs: 0 }), plan, silentLogger(), fetchPart);
  const card = await reports.verdict("1", T0);
  t.match(card, { nodes: 2, partial: true, missing_roots: ["r3"], roots: ["r1", "r2"] }, "r2's part merged; r3 did not answer");
  t.same(asked, ["r2:1", "r3:1"]);
  t.match(events.recent({ type: ["job_verdict"] }), [{ job: "1", details: { partial: true, nodes: 2 } }]);
  await reports.verdict("2", T0);
  await reports.verdict("3", T0);
  t.equal(reports.kept, 2, "reportsKept: the oldest card left");
  // A job whose first node is another root's: not this root's verdict.
  mine.set("4", { ...part("4", ["n2"], "r1"), nodelist: "n[2-3]" });
  t.equal(await reports.verdict("4", T0), undefined, "n2's root makes it");
  t.equal(events.recent({ type: ["job_verdict"] }).length, 3);
  // A root holding every node of a job asks nobody.
  asked.length = 0;
  mine.set("5", { ...part("5", ["n1", "n2", "n3"], "r1") });
  t.match(await reports.card("5", false, T0), { nodes: 3, partial: false });
  t.same(asked, [], "whole here: no peer asked");
});

t.test("job reports - emissions at the carbon intensity of a series now, else the configured figure", async (t) => {
  const node: NodePart = { node: "n1", started_at_s: T0 / 1000 - 3600, cpu_seconds: 1, cpus_allocated: 1, memory_peak_bytes: null, memory_limit_bytes: null, io_read_bytes: 0, io_written_bytes: 0, gpus: [], energy_joules: { cpu: 3.6e6 } };
  const part = { ...partOf([node], false, null, "debug", ["r1"]), job_id: "1" };
  const jobs = { part: () => part, onChange: () => undefined } as unknown as RootJobs;
  const plan = { root: "r1", peers: [], rootOfNode: () => "r1" };
  let intensity: number | null = 250;
  const reports = new JobReports(jobs, new EventLog("r1", new Registry()), jobsConfigSchema.parse({ carbonIntensitySeries: "grid_carbon_intensity_grams_per_kwh", carbonIntensityGramsPerKwh: 400 }), plan, silentLogger(), undefined, (name) => (name === "grid_carbon_intensity_grams_per_kwh" ? intensity : null));
  t.match((await reports.card("1", true, T0))?.energy, { kwh: 1, co2e_grams: 250 }, "the series' value now");
  intensity = null;
  t.match((await reports.card("1", true, T0 + 5000))?.energy, { kwh: 1, co2e_grams: 400 }, "the series gone: the configured figure");
});
