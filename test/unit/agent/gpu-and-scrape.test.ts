import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { gpuReadingsOf, parseGpuList, type GpuReadings } from "../../../src/agent/gpu-readings.js";
import { NvidiaSmiSource, parseNvidiaSmiLine } from "../../../src/agent/nvidia-smi-source.js";
import { ScrapeSource } from "../../../src/agent/scrape-source.js";
import { JobRegistry } from "../../../src/agent/slurm/job-registry.js";
import { JobSource } from "../../../src/agent/slurm/job-source.js";
import { silentLogger } from "../../../src/core/logger.js";
import { SeriesType } from "../../../src/series/series-def.js";
import { recorder } from "./sources.test.js";

/** A local exporter on 127.0.0.1 serving what `reply` says at each scrape; its /metrics URL. */
async function exporter(t: Test, reply: () => { status: number; body: string }): Promise<string> {
  const server = createServer((_, res) => {
    const { status, body } = reply();
    res.writeHead(status, { "content-type": "text/plain" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
}

const fixture = readFileSync(fileURLToPath(new URL("../../fixtures/nvidia-smi-a100x4.csv", import.meta.url)), "utf8");

t.test("nvidia-smi - recorded output maps to dcgm-exporter's names and labels; [N/A] is skipped", async (t) => {
  const lines = fixture.trim().split("\n");
  const g0 = parseNvidiaSmiLine(lines[0]!)!;
  t.same(g0.labels, { gpu: "0", UUID: "GPU-5f3b2a9c-1d2e-4f60-8a7b-9c0d1e2f3a4b", device: "nvidia0", modelName: "NVIDIA A100-SXM4-40GB", pci_bus_id: "00000000:07:00.0" });
  const v = Object.fromEntries(g0.values.map((x) => [x.name, x.value]));
  t.same(v, { DCGM_FI_DEV_GPU_UTIL: 97, DCGM_FI_DEV_MEM_COPY_UTIL: 41, DCGM_FI_DEV_FB_USED: 31522, DCGM_FI_DEV_FB_FREE: 9014, DCGM_FI_DEV_GPU_TEMP: 64, DCGM_FI_DEV_MEMORY_TEMP: 71, DCGM_FI_DEV_POWER_USAGE: 312.45, DCGM_FI_DEV_SM_CLOCK: 1410, DCGM_FI_DEV_MEM_CLOCK: 1215 });
  t.notOk(parseNvidiaSmiLine(lines[2]!)!.values.some((x) => x.name === "DCGM_FI_DEV_MEMORY_TEMP"), "[N/A] skipped");
  t.notOk(parseNvidiaSmiLine(lines[3]!)!.values.some((x) => x.name === "DCGM_FI_DEV_MEM_CLOCK"), "[Not Supported] skipped");
  t.equal(parseNvidiaSmiLine("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."), null);
  t.equal(parseNvidiaSmiLine("1, 2, 3"), null);

  const src = new NvidiaSmiSource("nvidia-smi-is-not-here", 1000, silentLogger());
  for (const l of lines) src.accept(l);
  const rec = recorder();
  src.collect(rec);
  t.equal(rec.values.get('DCGM_FI_DEV_GPU_UTIL{UUID="GPU-8c6e5d2f-4051-4293-bdae-2f3a4b5c6d7e",device="nvidia3",gpu="3",modelName="NVIDIA A100-SXM4-40GB",pci_bus_id="00000000:4E:00.0"}'), 100);
  t.equal([...rec.values.keys()].filter((k) => k.startsWith("DCGM_FI_DEV_POWER_USAGE")).length, 4);
  await new Promise((r) => setTimeout(r, 200));
  src.close();
});

t.test("scrape - a local exporter's series come up under the target's job; bad lines are counted, a failed scrape drops them", async (t) => {
  let body = [
    "# HELP app_iterations_total Iterations done.",
    "# TYPE app_iterations_total counter",
    'app_iterations_total{phase="solve",job="mine",instance="x"} 1200',
    "app_rate 3.5",
    "legacy_requests_total 7",
    'broken{a="1} 2',
  ].join("\n");
  let status = 200;
  const url = await exporter(t, () => ({ status, body }));
  const src = new ScrapeSource({ url, job: "app", intervalMs: 60_000, timeoutMs: 1000 }, silentLogger());
  t.teardown(() => src.close());
  await src.scrapeOnce();
  const rec = recorder();
  src.collect(rec);
  t.equal(rec.values.get('app_iterations_total{exported_instance="x",exported_job="mine",job="app",phase="solve"}'), 1200, "job and instance of the page become exported_*");
  t.equal(rec.defs.get('app_iterations_total{exported_instance="x",exported_job="mine",job="app",phase="solve"}')!.type, SeriesType.Counter);
  t.equal(rec.defs.get('legacy_requests_total{job="app"}')!.type, SeriesType.Counter, "an untyped *_total travels as a counter (exact)");
  t.equal(rec.values.get('app_rate{job="app"}'), 3.5);
  t.equal(rec.values.get(`banyan_scrape_up{job="app",url="${url}"}`), 1);
  t.equal(rec.values.get(`banyan_scrape_malformed_lines_total{job="app",url="${url}"}`), 1, "the bad line is counted, the good ones kept");
  status = 500;
  await src.scrapeOnce();
  src.collect(rec);
  t.equal(rec.values.get(`banyan_scrape_up{job="app",url="${url}"}`), 0);
  t.notOk(rec.values.has('app_rate{job="app"}'), "a failed scrape drops the target's series (staleness)");
  status = 200;
  body = "app_rate 4\n";
  await src.scrapeOnce();
  src.collect(rec);
  t.equal(rec.values.get('app_rate{job="app"}'), 4);
});

t.test("job GPUs - SLURM_JOB_GPUS lists and ranges; anything else is an error naming the text", async (t) => {
  t.same(parseGpuList("0,1"), ["0", "1"]);
  t.same(parseGpuList("4-6,9"), ["4", "5", "6", "9"]);
  t.same(parseGpuList(""), [], "a job without GPUs");
  t.throws(() => parseGpuList("0,gpu1"), /SLURM_JOB_GPUS "0,gpu1": "gpu1" is not a GPU index/);
  t.throws(() => parseGpuList("7-3"), /not a sensible range/);
});

t.test("job GPUs - a dcgm-exporter scrape and nvidia-smi both say how busy GPU <index> is", async (t) => {
  const page = [
    "# TYPE DCGM_FI_DEV_GPU_UTIL gauge",
    'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",Hostname="n1"} 88',
    'DCGM_FI_DEV_GPU_UTIL{gpu="1",UUID="GPU-b",device="nvidia1",Hostname="n1"} 12',
    "# TYPE DCGM_FI_DEV_FB_USED gauge",
    'DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-a",device="nvidia0",Hostname="n1"} 2048',
  ].join("\n");
  const dcgm = new ScrapeSource({ url: await exporter(t, () => ({ status: 200, body: page })), job: "dcgm", intervalMs: 60_000, timeoutMs: 1000 }, silentLogger());
  t.teardown(() => dcgm.close());
  t.equal(dcgm.gpuReading("0"), undefined, "nothing before the first scrape");
  await dcgm.scrapeOnce();
  t.same(dcgm.gpuReading("0"), { utilPercent: 88, memoryUsedMiB: 2048, energyJoules: null });
  t.same(dcgm.gpuReading("1"), { utilPercent: 12, memoryUsedMiB: null, energyJoules: null });
  t.equal(dcgm.gpuReading("7"), undefined);
  t.same(gpuReadingsOf([{ name: "node_load1", labels: {}, value: 1 }]).size, 0, "an exporter that is not dcgm-exporter has no GPUs");

  const smi = new NvidiaSmiSource("nvidia-smi-is-not-here", 1000, silentLogger());
  for (const l of fixture.trim().split("\n")) smi.accept(l);
  t.same(smi.gpuReading("3"), { utilPercent: 100, memoryUsedMiB: 39002, energyJoules: 0 });
});

t.test("job GPUs - the report averages the mean of the job's GPUs over its samples and keeps the busiest sample of any", async (t) => {
  const util = new Map<string, number>([["0", 50], ["1", 70], ["2", 5]]);
  const readings: GpuReadings = { gpuReading: (i) => (util.has(i) ? { utilPercent: util.get(i)!, memoryUsedMiB: 1000 } : undefined) };
  const registry = new JobRegistry("n1", "/nonexistent-cgroup", [readings]);
  registry.start({ jobId: "42", user: "alice", uid: "1001", partition: "gpu", account: "", startedAtMs: 0, gpus: ["0", "1"] });
  registry.start({ jobId: "43", user: "bob", uid: "1002", partition: "cpu", account: "", startedAtMs: 0 });
  const rec = recorder();
  const source = new JobSource(registry);
  source.collect(rec, 1000);
  t.equal(rec.values.get('banyan_job_gpu_utilization_percent{job_id="42",partition="gpu",user="alice"}'), 60, "mean of GPUs 0 and 1 now");
  t.equal(rec.values.get('banyan_job_gpu_memory_used_bytes{job_id="42",partition="gpu",user="alice"}'), 2000 * 1024 * 1024);
  t.equal(rec.values.get('banyan_job_gpu_info{gpu="1",job_id="42",partition="gpu",user="alice"}'), 1);
  t.notOk([...rec.values.keys()].some((k) => k.startsWith("banyan_job_gpu") && k.includes('job_id="43"')), "job 43 has no GPUs");
  t.equal(rec.values.get('banyan_job_info{account="",job_id="43",partition="cpu",user="bob"}'), 1, "a job without a cgroup still has its info series");
  util.set("0", 100);
  util.set("1", 40);
  source.collect(rec, 2000);
  util.delete("0");
  util.delete("1"); // the GPU source lost them (nvidia-smi restarting): no sample, no zero
  source.collect(rec, 3000);
  const report = registry.end("42", "0", 4000)!;
  t.same([report.gpus, report.gpu_util_avg_percent, report.gpu_util_peak_percent, report.gpu_memory_peak_bytes], [["0", "1"], 65, 100, 2000 * 1024 * 1024]);
  t.equal(report.cpu_seconds, null, "no cgroup: no CPU figures, and no error");
  const cpuOnly = registry.end("43", "0", 4000)!;
  t.same([cpuOnly.gpus, cpuOnly.gpu_util_avg_percent, cpuOnly.gpu_util_peak_percent], [[], null, null]);
});
