import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import t from "tap";
import { PushServer, type PushAuth } from "../../src/agent/push-server.js";
import { silentLogger } from "../../src/core/logger.js";
import { MetricFamilySchema, MetricType } from "../../src/gen/io/prometheus/client/metrics_pb.js";
import { parseExposition } from "../../src/series/text-parser.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";
import { recorder } from "../unit/agent/sources.test.js";

/**
 * The push API against the program it imitates: the same requests (text, and protobuf as the Go
 * client pushes) go to a real Pushgateway (Debian's 1.5) and to Banyan's push server; both must answer with the same status, and hold the same
 * series afterwards (Banyan drops the Pushgateway's empty instance="" label, which Prometheus
 * treats as absent anyway).
 */
const BASE = 31600;
const noJobs: PushAuth = { jobOfToken: () => undefined, jobLabels: () => undefined };
const b64 = (s: string): string => Buffer.from(s).toString("base64url");

/** Length-delimited MetricFamily messages, as client_golang's push sends them. */
function delimited(families: MetricFamilyInit[]): Uint8Array {
  const w = new BinaryWriter();
  for (const f of families) w.bytes(toBinary(MetricFamilySchema, create(MetricFamilySchema, f)));
  return w.finish();
}
type MetricFamilyInit = Parameters<typeof create<typeof MetricFamilySchema>>[1];
const PROTO = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const goPush = delimited([
  { name: "steps_total", help: "Steps done.", type: MetricType.COUNTER, metric: [{ label: [{ name: "rank", value: "0" }], counter: { value: 41 } }, { label: [{ name: "rank", value: "1" }], counter: { value: 40 } }] },
  { name: "phase_progress", type: MetricType.GAUGE, metric: [{ gauge: { value: 0.75 } }] },
  { name: "step_seconds", type: MetricType.SUMMARY, metric: [{ summary: { sampleCount: 81n, sampleSum: 12.5, quantile: [{ quantile: 0.5, value: 0.15 }, { quantile: 0.99, value: 0.4 }] } }] },
  { name: "io_seconds", type: MetricType.HISTOGRAM, metric: [{ histogram: { sampleCount: 10n, sampleSum: 2.5, bucket: [{ upperBound: 0.1, cumulativeCount: 4n }, { upperBound: 1, cumulativeCount: 9n }] } }] },
  { name: "legacy", type: MetricType.UNTYPED, metric: [{ untyped: { value: 3 } }] },
]);

const REQUESTS: [method: string, path: string, body: string | Uint8Array, contentType?: string][] = [
  ["PUT", "/metrics/job/solver/phase/solve", '# TYPE iterations_total counter\niterations_total 1200\n# TYPE rate gauge\nrate{kernel="dgemm"} 3.5\n'],
  ["PUT", "/metrics/job/app", 'c{job="other",x="1"} 1\n'],
  ["PUT", "/metrics/job/broken", "broken{ 2\n"],
  ["PUT", `/metrics/job@base64/${b64("a/b")}/path@base64/${b64("/scratch/run 1")}`, "d 1\n"],
  ["PUT", "/metrics/job/e/empty@base64/=", "e 1\n"],
  ["POST", "/metrics/job/solver/phase/solve", "# TYPE rate gauge\nrate{kernel=\"fft\"} 9\nresidual 0.001\n"],
  ["PUT", "/metrics/job/k1", "# TYPE m counter\nm 1\n"],
  ["PUT", "/metrics/job/k2", "# TYPE m gauge\nm 2\n"],
  ["PUT", "/metrics/job/k3", 'dup{a="1"} 2\ndup{a="1"} 3\n'],
  ["PUT", "/metrics/job/k4", "stamped 1 1700000000000\n"],
  ["PUT", "/metrics/job/k5/slurm_job_id", "odd 1\n"],
  ["DELETE", "/metrics/job/k1", ""],
  ["DELETE", "/metrics/job/never-pushed", ""],
  ["PUT", "/metrics/job/k2", "# TYPE m gauge\nm 2\n"],
  ["PUT", "/metrics/job/hist", "# TYPE lat_seconds histogram\nlat_seconds_bucket{le=\"0.1\"} 3\nlat_seconds_bucket{le=\"+Inf\"} 5\nlat_seconds_sum 0.9\nlat_seconds_count 5\n"],
  ["PUT", "/metrics/job/solver/phase/solve", "# TYPE iterations_total counter\niterations_total 2400\n"],
  ["PUT", "/metrics/job/go/instance/n1", goPush, PROTO],
  ["PUT", "/metrics/job/go-broken", goPush.subarray(0, goPush.length - 3), PROTO],
  ["PUT", "/metrics/job/go-stamped", delimited([{ name: "stamped", type: MetricType.GAUGE, metric: [{ gauge: { value: 1 }, timestampMs: 1700000000000n }] }]), PROTO],
  ["POST", "/metrics/job/go/instance/n1", delimited([{ name: "phase_progress", type: MetricType.GAUGE, metric: [{ gauge: { value: 0.8 } }] }]), PROTO],
];

/** `name{sorted labels} value` lines, without the empty instance label and the Pushgateway's own metrics. */
function normalise(samples: Iterable<{ name: string; labels: Record<string, string>; value: number }>): string[] {
  const out: string[] = [];
  for (const s of samples) {
    if (/^(go_|process_|pushgateway_)/.test(s.name)) continue;
    const labels = Object.entries(s.labels)
      .filter(([k, v]) => !(k === "instance" && v === ""))
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
      .join(",");
    out.push(`${s.name}{${labels}} ${/^push_(failure_)?time_seconds$/.test(s.name) && s.value !== 0 ? "<time>" : s.value}`);
  }
  return out.sort();
}

t.test("push API - answers and keeps what a real Pushgateway answers and keeps, request for request", async (t) => {
  // Its own empty persistence file: Debian's build otherwise keeps what earlier runs pushed.
  const dir = mkdtempSync(join(tmpdir(), "banyan-pgw-"));
  const pgw = startProcess(requireProgram("prometheus-pushgateway"), [`--web.listen-address=127.0.0.1:${BASE}`, `--persistence.file=${join(dir, "pushgateway.data")}`]);
  const banyan = new PushServer(`127.0.0.1:${BASE + 1}`, noJobs, silentLogger());
  await banyan.listen();
  t.teardown(async () => {
    await banyan.stop();
    await pgw.stop();
  });
  t.ok(await eventually(async () => (await httpText(`http://127.0.0.1:${BASE}/-/healthy`).catch(() => ({ status: 0 }))).status === 200, 20_000, 100), "the Pushgateway is up");

  for (const [method, path, body, contentType] of REQUESTS) {
    const send = async (port: number): Promise<{ status: number; text: string }> => {
      const headers = contentType === undefined ? {} : { "content-type": contentType };
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, ...(method === "DELETE" ? {} : { body }), redirect: "manual" });
      return { status: res.status, text: await res.text() };
    };
    const [want, got] = [await send(BASE), await send(BASE + 1)];
    t.equal(got.status, want.status, `${method} ${path}: ${want.status} as the Pushgateway${want.status >= 400 || got.status !== want.status ? ` (it said: ${want.text.trim().slice(0, 90)}; Banyan: ${got.text.trim().slice(0, 90)})` : ""}`);
  }

  const reference = normalise(parseExposition((await httpText(`http://127.0.0.1:${BASE}/metrics`)).text).samples);
  const rec = recorder();
  banyan.collect(rec);
  const ours = normalise([...rec.values].map(([key, value]) => ({ name: rec.defs.get(key)!.name, labels: Object.fromEntries(rec.defs.get(key)!.labels), value })));
  t.same(ours, reference, "the same series and values, push_time_seconds and push_failure_time_seconds per group included");
});
