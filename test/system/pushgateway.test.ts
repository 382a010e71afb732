import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { PushServer, type PushAuth } from "../../src/agent/push-server.js";
import { silentLogger } from "../../src/core/logger.js";
import { parseExposition } from "../../src/series/text-parser.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";
import { recorder } from "../unit/agent/sources.test.js";

/**
 * The push API against the program it imitates: the same requests go to a real Pushgateway (Debian's
 * 1.5) and to Banyan's push server; both must answer with the same status, and hold the same
 * series afterwards (Banyan drops the Pushgateway's empty instance="" label, which Prometheus
 * treats as absent anyway).
 */
const BASE = 31600;
const noJobs: PushAuth = { jobOfToken: () => undefined, jobLabels: () => undefined };
const b64 = (s: string): string => Buffer.from(s).toString("base64url");

const REQUESTS: [method: string, path: string, body: string][] = [
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

  for (const [method, path, body] of REQUESTS) {
    const send = async (port: number): Promise<{ status: number; text: string }> => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, ...(method === "DELETE" ? {} : { body }), redirect: "manual" });
      return { status: res.status, text: await res.text() };
    };
    const [want, got] = [await send(BASE), await send(BASE + 1)];
    t.equal(got.status, want.status, `${method} ${path}: ${want.status} as the Pushgateway${want.status >= 400 ? ` (it said: ${want.text.trim().slice(0, 90)}; Banyan: ${got.text.trim().slice(0, 90)})` : ""}`);
  }

  const proto = await fetch(`http://127.0.0.1:${BASE + 1}/metrics/job/go`, { method: "PUT", headers: { "content-type": "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited" }, body: "\u0005\n\u0001x" });
  t.equal(proto.status, 415, "a protobuf push (the Go client's default) is refused, not misread");
  t.match(await proto.text(), /text format only/);

  const reference = normalise(parseExposition((await httpText(`http://127.0.0.1:${BASE}/metrics`)).text).samples);
  const rec = recorder();
  banyan.collect(rec);
  const ours = normalise([...rec.values].map(([key, value]) => ({ name: rec.defs.get(key)!.name, labels: Object.fromEntries(rec.defs.get(key)!.labels), value })));
  t.same(ours, reference, "the same series and values, push_time_seconds and push_failure_time_seconds per group included");
});
