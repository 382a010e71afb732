import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import t from "tap";
import { NvidiaSmiSource, parseNvidiaSmiLine } from "../../../src/agent/nvidia-smi-source.js";
import { ScrapeSource } from "../../../src/agent/scrape-source.js";
import { silentLogger } from "../../../src/core/logger.js";
import { SeriesType } from "../../../src/series/series-def.js";
import { recorder } from "./sources.test.js";

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
  const server = createServer((_, res) => res.writeHead(status, { "content-type": "text/plain" }).end(body));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
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
