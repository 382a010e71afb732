import { mkdirSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { pino } from "pino";
import t from "tap";
import { readFileSync } from "node:fs";
import { NodeSource } from "../../../src/agent/node-source.js";
import { NvidiaSmiSource } from "../../../src/agent/nvidia-smi-source.js";
import { IpmiPowerSource, parseDcmiPowerReading, parseRedfishPower } from "../../../src/agent/power/ipmi-source.js";
import { cpuAndDramJoules, raplZones } from "../../../src/agent/power/rapl.js";
import { JobEnergy, busyCpuSeconds, type JobLoad, type NodeEnergy } from "../../../src/agent/slurm/job-energy.js";
import { silentLogger } from "../../../src/core/logger.js";
import { fileTree } from "../../fixtures/file-tree.js";
import { recorder } from "./sources.test.js";

const FIXTURES = fileURLToPath(new URL("../../fixtures/power/", import.meta.url));

/** Two sockets' RAPL zones as an Intel server's /sys/class/powercap lays them out, and a hwmon power meter (ACPI power_meter). */
const SYS: Record<string, string> = {
  "sys/class/powercap/intel-rapl/enabled": "1\n",
  "sys/class/powercap/intel-rapl:0/name": "package-0\n",
  "sys/class/powercap/intel-rapl:0/energy_uj": "123456789\n",
  "sys/class/powercap/intel-rapl:0/max_energy_range_uj": "262143328850\n",
  "sys/class/powercap/intel-rapl:0:0/name": "dram\n",
  "sys/class/powercap/intel-rapl:0:0/energy_uj": "5000000\n",
  "sys/class/powercap/intel-rapl:1/name": "package-1\n",
  "sys/class/powercap/intel-rapl:1/energy_uj": "1000000\n",
  "sys/class/powercap/intel-rapl:1:0/name": "dram\n",
  "sys/class/powercap/intel-rapl:1:0/energy_uj": "2500000\n",
  "sys/class/hwmon/hwmon1/name": "power_meter\n",
  "sys/class/hwmon/hwmon1/power1_average": "312500000\n",
  "sys/class/hwmon/hwmon1/energy1_input": "7200000000\n",
  "proc/stat": "cpu  1000 50 450 9000 100 20 30 0 0 0\n",
};

t.test("energy collectors - node_rapl_<zone>_joules_total and node_hwmon power and energy, at node_exporter's names", async (t) => {
  const root = fileTree(SYS, "banyan-power-");
  const rec = recorder();
  await new NodeSource({ proc: join(root, "proc"), sys: join(root, "sys"), rootfs: root }).collect(rec);
  const v = (k: string): number | undefined => rec.values.get(k);
  const rapl = join(root, "sys/class/powercap");
  t.equal(v(`node_rapl_package_joules_total{index="0",path="${rapl}/intel-rapl:0"}`), 123.456789);
  t.equal(v(`node_rapl_package_joules_total{index="1",path="${rapl}/intel-rapl:1"}`), 1);
  t.equal(v(`node_rapl_dram_joules_total{index="0",path="${rapl}/intel-rapl:0:0"}`), 5, "a name without an index: counted, as node_exporter does");
  t.equal(v(`node_rapl_dram_joules_total{index="1",path="${rapl}/intel-rapl:1:0"}`), 2.5);
  t.equal(v('node_hwmon_power_average_watt{chip="hwmon1",sensor="power1"}'), 312.5);
  t.equal(v('node_hwmon_energy_joule_total{chip="hwmon1",sensor="energy1"}'), 7200);
  t.equal(v('node_scrape_collector_success{collector="rapl"}'), 1);
  t.same(cpuAndDramJoules(raplZones(join(root, "sys"))), { cpu: 124.456789, dram: 7.5 }, "the packages and the DRAM zones summed, for the jobs' shares");
  t.equal(busyCpuSeconds(join(root, "proc")), 15.5, "user nice system irq softirq steal, in USER_HZ");
});

t.test("energy collectors - an energy_uj that cannot be read fails the collector and says so, never quietly empty", async (t) => {
  const root = fileTree({ ...SYS, "sys/class/powercap/intel-rapl:0/energy_uj": "" });
  // Root reads any file whatever its mode: an energy_uj that is a directory cannot be read either.
  const file = join(root, "sys/class/powercap/intel-rapl:0/energy_uj");
  rmSync(file);
  mkdirSync(file);
  const lines: string[] = [];
  const log = pino({ level: "warn" }, { write: (l: string) => void lines.push(l) });
  const rec = recorder();
  const source = new NodeSource({ proc: join(root, "proc"), sys: join(root, "sys"), rootfs: root }, [], log);
  await source.collect(rec);
  await source.collect(rec);
  t.equal(rec.values.get('node_scrape_collector_success{collector="rapl"}'), 0);
  t.equal(lines.length, 1, "one line, not one a tick");
  t.match(JSON.parse(lines[0]!), { collector: "rapl", err: /intel-rapl:0\/energy_uj: EISDIR/, msg: /collector rapl failed/ });
  t.same(cpuAndDramJoules(raplZones(join(root, "sys"))), { cpu: null, dram: null }, "an unreadable zone: unknown, not a smaller sum");
});

t.test("ipmi - ipmitool dcmi power reading as ipmi_exporter's ipmi_dcmi_power_consumption_watts", async (t) => {
  t.equal(parseDcmiPowerReading(readFileSync(join(FIXTURES, "ipmitool-dcmi-power-reading.txt"), "utf8")), 245);
  t.equal(parseDcmiPowerReading(readFileSync(join(FIXTURES, "ipmitool-dcmi-power-deactivated.txt"), "utf8")), null, "a reading switched off is no reading (not 0 W)");
  t.equal(parseDcmiPowerReading("Error: no DCMI support\n"), null);
  const s = new IpmiPowerSource(join(FIXTURES, "ipmitool"), 60_000, 5000, silentLogger());
  await s.pollOnce();
  const rec = recorder();
  s.collect(rec);
  s.close();
  t.equal(rec.values.get("ipmi_dcmi_power_consumption_watts"), 245);
  t.equal(rec.values.get('ipmi_up{collector="dcmi"}'), 1);
  t.equal(s.powerWatts(), 245);
  const missing = new IpmiPowerSource(join(FIXTURES, "no-such-ipmitool"), 60_000, 5000, silentLogger());
  await missing.pollOnce();
  const rec2 = recorder();
  missing.collect(rec2);
  missing.close();
  t.equal(rec2.values.get('ipmi_up{collector="dcmi"}'), 0, "ipmitool missing: ipmi_up 0");
  t.notOk(rec2.values.has("ipmi_dcmi_power_consumption_watts"));
});

t.test("nvidia-smi - each GPU's power integrated into DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ)", async (t) => {
  const s = new NvidiaSmiSource("nvidia-smi", 1000, silentLogger());
  const line = readFileSync(fileURLToPath(new URL("../../fixtures/nvidia-smi-a100x4.csv", import.meta.url)), "utf8").split("\n")[0]!;
  s.accept(line, 10_000);
  s.accept(line, 11_000);
  s.accept(line, 13_000);
  const rec = recorder();
  s.collect(rec);
  s.close();
  const key = [...rec.values.keys()].find((k) => k.startsWith("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{"))!;
  t.ok(key.includes('gpu="0"'), key);
  t.equal(Math.round(rec.values.get(key)!), Math.round(312.45 * 3000), "312.45 W for 3 s");
  t.equal(Math.round(s.gpuReading("0")!.energyJoules!), Math.round(312.45 * 3), "in joules for the jobs");
});

/** One tick of a node: each source's energy in the tick, its busy CPU, and each job's CPU time and GPUs. */
const tickArb = fc.record({
  dtMs: fc.integer({ min: 200, max: 40_000 }),
  dPkg: fc.option(fc.double({ min: -50, max: 500, noNaN: true }), { nil: null, freq: 8 }),
  dDram: fc.option(fc.double({ min: 0, max: 100, noNaN: true }), { nil: null }),
  watts: fc.option(fc.double({ min: 0, max: 2000, noNaN: true }), { nil: null }),
  dGpu: fc.array(fc.double({ min: -10, max: 800, noNaN: true }), { minLength: 4, maxLength: 4 }),
  dBusy: fc.double({ min: 0, max: 64, noNaN: true }),
  jobs: fc.uniqueArray(fc.record({ id: fc.constantFrom("1", "2", "3"), dCpu: fc.double({ min: 0, max: 80, noNaN: true }), gpus: fc.subarray(["0", "1", "2", "3"]) }), { maxLength: 3, selector: (j) => j.id }),
});

t.test("job energy - over random ticks, the jobs together never get more of a source than the node measured, and a job's GPU energy is its GPUs'", async (t) => {
  fc.assert(
    fc.property(fc.array(tickArb, { minLength: 1, maxLength: 30 }), (ticks) => {
      const share = new JobEnergy();
      let now = 1_000_000;
      const node = { cpu: 1000, dram: 100, gpus: [10, 10, 10, 10], busy: 100 };
      const jobCpu = new Map<string, number>();
      let measured = { gpu: 0, cpu: 0, dram: 0, node: 0 };
      let prevWatts: number | null = null;
      const gpuOfJobs = new Map<string, number>();
      let first = true;
      for (const k of ticks) {
        now += k.dtMs;
        const dtS = k.dtMs / 1000;
        if (k.dPkg !== null) node.cpu += k.dPkg;
        if (k.dDram !== null) node.dram += k.dDram;
        k.dGpu.forEach((d, g) => (node.gpus[g]! += d));
        node.busy += k.dBusy;
        const loads: JobLoad[] = k.jobs.map((j) => {
          jobCpu.set(j.id, (jobCpu.get(j.id) ?? 0) + j.dCpu);
          return { jobId: j.id, cpuSeconds: jobCpu.get(j.id)!, gpus: j.gpus };
        });
        const e: NodeEnergy = { cpu: k.dPkg === null ? null : node.cpu, dram: k.dDram === null ? null : node.dram, gpus: new Map(node.gpus.map((j, g) => [String(g), j])), nodeWatts: k.watts, busyCpuSeconds: node.busy };
        const before = loads.map((l) => ({ ...share.of(l.jobId, e) }));
        share.tick(now, e, loads);
        // What the node measured in this tick, as the attribution may count it (only forward moves, ticks ≤ 30 s).
        if (!first && dtS <= 30) {
          measured = {
            cpu: measured.cpu + Math.max(0, k.dPkg ?? 0),
            dram: measured.dram + Math.max(0, k.dDram ?? 0),
            gpu: measured.gpu + k.dGpu.reduce((a, d) => a + Math.max(0, d), 0),
            node: measured.node + (k.watts !== null && prevWatts !== null ? ((k.watts + prevWatts) / 2) * dtS : 0),
          };
          // A job's GPU energy this tick is at most its GPUs' (shared with another job that names them too).
          for (const [n, l] of loads.entries()) {
            const gained = (share.of(l.jobId, e).gpu ?? 0) - (before[n]!.gpu ?? 0);
            const own = l.gpus.reduce((a, g) => a + Math.max(0, k.dGpu[Number(g)]!), 0);
            if (gained > own + 1e-6 || gained < -1e-9) return false;
            gpuOfJobs.set(l.jobId, (gpuOfJobs.get(l.jobId) ?? 0) + gained);
          }
        }
        prevWatts = k.watts;
        first = false;
        // Summed over the jobs that ever ran, per source: never past what was measured.
        const sum = { gpu: 0, cpu: 0, dram: 0, node: 0 };
        for (const id of ["1", "2", "3"]) {
          const j = share.of(id, { cpu: 0, dram: 0, gpus: new Map([["0", 0]]), nodeWatts: 0, busyCpuSeconds: 0 });
          for (const s of ["gpu", "cpu", "dram", "node"] as const) {
            if ((j[s] ?? 0) < 0) return false;
            sum[s] += j[s] ?? 0;
          }
        }
        for (const s of ["gpu", "cpu", "dram"] as const) if (sum[s] > measured[s] + 1e-6 * (1 + measured[s])) return false;
        if (sum.node > measured.node + 1e-6 * (1 + measured.node)) return false;
      }
      return true;
    }),
    { numRuns: 400 },
  );
  t.pass("400 random runs of up to 30 ticks");
});

t.test("job energy - a job that used all of the busy CPU gets all the package energy; one that ended is forgotten", async (t) => {
  const share = new JobEnergy();
  const e = (cpu: number, busy: number, gpu0: number): NodeEnergy => ({ cpu, dram: null, gpus: new Map([["0", gpu0]]), nodeWatts: null, busyCpuSeconds: busy });
  share.tick(0, e(0, 0, 0), [{ jobId: "1", cpuSeconds: 0, gpus: ["0"] }, { jobId: "2", cpuSeconds: 0, gpus: [] }]);
  share.tick(1000, e(100, 4, 300), [{ jobId: "1", cpuSeconds: 3, gpus: ["0"] }, { jobId: "2", cpuSeconds: 1, gpus: [] }]);
  t.same(share.of("1"), { gpu: 300, cpu: 75 }, "3 of 4 busy CPU-seconds: 75 % of 100 J; its GPU's 300 J; no DRAM or BMC here: not said");
  t.same(share.of("2"), { cpu: 25 }, "a job without GPUs has no GPU energy to say (not 0)");
  share.forget("2");
  t.same(share.of("2"), {});
});

t.test("redfish - the BMC's power over Redfish (Basic auth), as ipmi_dcmi_power_consumption_watts", async (t) => {
  const body = readFileSync(join(FIXTURES, "redfish-chassis-power.json"), "utf8");
  t.equal(parseRedfishPower(JSON.parse(body)), 312, "a Power resource's PowerControl[0].PowerConsumedWatts");
  t.equal(parseRedfishPower({ PowerWatts: { Reading: 401.5 } }), 401.5, "an EnvironmentMetrics' PowerWatts.Reading");
  t.equal(parseRedfishPower({ Reading: 99, ReadingUnits: "W" }), 99, "a power Sensor's Reading");
  t.equal(parseRedfishPower({ Reading: 35, ReadingUnits: "Cel" }), null, "not a power sensor");
  t.equal(parseRedfishPower({ PowerControl: [{ PowerConsumedWatts: null }] }), null);
  let auth = "";
  const server = createServer((req, res) => {
    auth = req.headers.authorization ?? "";
    if (auth !== `Basic ${Buffer.from("monitor:s3cret").toString("base64")}`) return void res.writeHead(401).end();
    res.writeHead(200, { "content-type": "application/json" }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/redfish/v1/Chassis/1/Power`;
  const s = new IpmiPowerSource("ipmitool-not-used", 60_000, 10_000, silentLogger(), { url, credentials: "monitor:s3cret", ca: null, insecureSkipVerify: false });
  await s.pollOnce();
  const rec = recorder();
  s.collect(rec);
  s.close();
  t.equal(rec.values.get("ipmi_dcmi_power_consumption_watts"), 312);
  t.equal(s.powerWatts(), 312);
  const wrong = new IpmiPowerSource("x", 60_000, 10_000, silentLogger(), { url, credentials: "monitor:nope", ca: null, insecureSkipVerify: false });
  await wrong.pollOnce();
  t.equal(wrong.powerWatts(), null, "refused (401): no reading");
  wrong.close();
});
