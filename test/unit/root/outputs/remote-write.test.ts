import fc from "fast-check";
import { uncompressSync } from "snappy";
import t from "tap";
import { retryAfterMs } from "../../../../src/root/outputs/remote-write/remote-write-client.js";
import { SampleBatch, mergeLabels } from "../../../../src/root/outputs/remote-write/sample-batch.js";
import { WriteRequestWriter } from "../../../../src/root/outputs/remote-write/write-request.js";
import { WriteRequestV2Writer, v2ToV1 } from "../../../../src/root/outputs/remote-write/write-request-v2.js";
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { SeriesFilter } from "../../../../src/root/outputs/remote-write/series-filter.js";
import { SigV4Signer } from "../../../../src/root/outputs/remote-write/sigv4-signer.js";
import { SeriesType, seriesDef } from "../../../../src/series/series-def.js";
import { decodeWriteRequest } from "../../../fixtures/write-request-reader.js";

const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,8}$/).filter((s) => !s.startsWith("__"));

t.test("remote_write - labels are sorted and unique, the origin is the instance, external labels never override", async (t) => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.tuple(labelName, fc.string({ maxLength: 6 })), { selector: ([n]) => n, maxLength: 8 }),
      fc.uniqueArray(fc.tuple(labelName, fc.string({ minLength: 1, maxLength: 6 })), { selector: ([n]) => n, maxLength: 4 }),
      fc.double({ noNaN: true }),
      fc.integer({ min: 0, max: 2 ** 42 }),
      (labels, external, value, ts) => {
        const def = seriesDef("m_x", Object.fromEntries(labels), SeriesType.Gauge);
        const ext = external.filter(([n]) => n !== "instance").sort(([a], [b]) => (a < b ? -1 : 1));
        const batch = new SampleBatch();
        batch.add(def, { instance: "node7", cluster: null }, value, ts, 0);
        batch.add(def, { instance: "node7", cluster: null }, NaN, ts + 1, 0, true);
        const req = decodeWriteRequest(batch.encode(new WriteRequestWriter(16), ext));
        t.equal(req.series.length, 2);
        const got = req.series[0]!;
        const names = got.labels.map(([n]) => n);
        t.same(names, [...new Set(names)].sort(), "sorted, unique");
        const map = new Map(got.labels);
        t.equal(map.get("__name__"), "m_x");
        t.equal(map.get("instance"), "node7");
        for (const [n, v] of labels) if (n !== "instance" && v !== "") t.equal(map.get(n), v, `own label ${n} kept`);
        for (const [n, v] of ext) if (!labels.some(([l, lv]) => l === n && lv !== "")) t.equal(map.get(n), v, `external ${n} added`);
        t.ok(Object.is(got.samples[0]!.value, value) && got.samples[0]!.ts === ts, "value and timestamp exact");
        t.equal(req.series[1]!.samples[0]!.bits, 0x7ff0000000000002n, "the staleness marker's NaN, bit for bit");
      },
    ),
    { numRuns: 150 },
  );
});

t.test("remote_write - labels merge into the caller's scratch without growing it past the labels", async (t) => {
  const names: string[] = [];
  const vals: string[] = [];
  const def = seriesDef("up", { job: "node", instance: "ignored", zone: "" }, SeriesType.Gauge);
  t.equal(mergeLabels(def, { instance: "n1", cluster: null }, [["cluster", "c1"], ["job", "other"]], names, vals), 4);
  t.same(names.slice(0, 4), ["__name__", "cluster", "instance", "job"]);
  t.same(vals.slice(0, 4), ["up", "c1", "n1", "node"], "the series' own job wins over the external one; an empty label is no label");
});

t.test("remote_write - a series of the root itself keeps its own instance and labels; external labels fill in", async (t) => {
  const names: string[] = [];
  const vals: string[] = [];
  const def = seriesDef("banyan_node_up", { instance: "n7", root: "r1", cluster: "" }, SeriesType.Gauge);
  t.equal(mergeLabels(def, null, [["cluster", "c1"], ["instance", "never"]], names, vals), 4);
  t.same(names.slice(0, 4), ["__name__", "cluster", "instance", "root"]);
  t.same(vals.slice(0, 4), ["banyan_node_up", "c1", "n7", "r1"], "the node's instance kept, not replaced by an origin");
});

t.test("remote_write - metadata and a snappy body as a receiver reads them", async (t) => {
  const w = new WriteRequestWriter();
  w.metadata("node_cpu_seconds_total", 1, "Seconds the CPUs spent in each mode.");
  const body = uncompressSync(Buffer.from((await import("snappy")).compressSync(w.view()))) as Buffer;
  t.same(decodeWriteRequest(body).metadata, [{ type: 1, family: "node_cpu_seconds_total", help: "Seconds the CPUs spent in each mode." }]);
});

t.test("remote_write - Retry-After in seconds or as a date", async (t) => {
  t.equal(retryAfterMs("3"), 3000);
  t.equal(retryAfterMs(new Date(10_000).toUTCString(), 4000), 6000);
  t.equal(retryAfterMs("soon"), null);
  t.equal(retryAfterMs(undefined), null);
});

t.test("remote_write 2.0 - the symbol table starts empty, labels and help are references, and the same request converts to 1.0 exactly", async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.constantFrom("m_a", "m_b_total", "m_c"), fc.uniqueArray(fc.tuple(labelName, fc.string({ minLength: 1, maxLength: 5 })), { selector: ([n]) => n, maxLength: 4 }), fc.double(), fc.integer({ min: 0, max: 2 ** 42 }), fc.boolean()), { minLength: 1, maxLength: 30 }),
      (samples) => {
        const batch = new SampleBatch();
        for (const [name, labels, value, ts, stale] of samples) batch.add(seriesDef(name, Object.fromEntries(labels), name.endsWith("_total") ? SeriesType.Counter : SeriesType.Gauge, { help: `help of ${name}` }), { instance: "n1", cluster: null }, value, ts, 0, stale);
        const copy = new SampleBatch();
        for (const [name, labels, value, ts, stale] of samples) copy.add(seriesDef(name, Object.fromEntries(labels), name.endsWith("_total") ? SeriesType.Counter : SeriesType.Gauge, { help: `help of ${name}` }), { instance: "n1", cluster: null }, value, ts, 0, stale);
        const v2 = Buffer.from(batch.encode(new WriteRequestV2Writer(), [["cluster", "c"]]));
        const req = decodeV2(v2);
        t.equal(req.symbols[0], "", "symbols[0] is the empty string");
        t.equal(new Set(req.symbols).size, req.symbols.length, "each string once");
        t.equal(req.series.length, samples.length);
        req.series.forEach((s, k) => {
          const [name, , value, ts, stale] = samples[k]!;
          const labels = new Map(s.labels);
          t.equal(labels.get("__name__"), name);
          t.equal(labels.get("cluster"), "c");
          t.equal(s.type, name.endsWith("_total") ? 1 : 2);
          t.equal(s.help, `help of ${name}`);
          t.equal(s.ts, ts);
          t.ok(stale ? s.bits === 0x7ff0000000000002n : Object.is(s.value, value));
        });
        const v1 = decodeWriteRequest(v2ToV1(v2));
        const direct = decodeWriteRequest(copy.encode(new WriteRequestWriter(), [["cluster", "c"]]));
        t.same(v1, direct, "2.0 → 1.0 is the 1.0 request of the same samples");
      },
    ),
    { numRuns: 100 },
  );
});

function decodeV2(bytes: Uint8Array): { symbols: string[]; series: { labels: [string, string][]; value: number; bits: bigint; ts: number; type: number; help: string }[] } {
  const r = new BinaryReader(bytes);
  const symbols: string[] = [];
  const raw: Uint8Array[] = [];
  while (r.pos < r.len) {
    const [f, wt] = r.tag();
    if (f === 4) symbols.push(r.string());
    else if (f === 5) raw.push(r.bytes());
    else r.skip(wt);
  }
  const series = raw.map((b) => {
    const s = new BinaryReader(b);
    const out = { labels: [] as [string, string][], value: 0, bits: 0n, ts: 0, type: 0, help: "" };
    while (s.pos < s.len) {
      const [f, wt] = s.tag();
      if (f === 1) {
        const refs = new BinaryReader(s.bytes());
        const ids: number[] = [];
        while (refs.pos < refs.len) ids.push(refs.uint32());
        for (let k = 0; k < ids.length; k += 2) out.labels.push([symbols[ids[k]!]!, symbols[ids[k + 1]!]!]);
      } else if (f === 2) {
        const m = new BinaryReader(s.bytes());
        while (m.pos < m.len) {
          const [g] = m.tag();
          if (g === 1) {
            out.bits = BigInt(m.fixed64());
            out.value = new Float64Array(new BigUint64Array([out.bits]).buffer)[0]!;
          } else out.ts = Number(m.int64());
        }
      } else if (f === 5) {
        const m = new BinaryReader(s.bytes());
        while (m.pos < m.len) {
          const [g] = m.tag();
          if (g === 1) out.type = m.int32();
          else if (g === 3) out.help = symbols[m.uint32()]!;
          else m.uint32();
        }
      } else s.skip(wt);
    }
    return out;
  });
  return { symbols, series };
}

t.test("remote_write sigv4 - AWS's published test vectors (aws-sig-v4-test-suite: get-vanilla, post-vanilla)", async (t) => {
  const signer = new SigV4Signer({ region: "us-east-1", service: "service", accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" });
  const at = new Date("2015-08-30T12:36:00Z");
  const url = new URL("https://example.amazonaws.com/");
  const get = await signer.sign("GET", url, {}, undefined, at);
  t.equal(get["authorization"], "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
  t.equal(get["x-amz-date"], "20150830T123600Z");
  const post = await signer.sign("POST", url, {}, undefined, at);
  t.equal(post["authorization"], "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  const rw = await new SigV4Signer({ region: "eu-west-1", service: "aps", accessKey: "AKIDEXAMPLE", secretKey: "x" }).sign("POST", new URL("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"), { "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0" }, Buffer.from("body"), at);
  t.match(rw["authorization"], /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20150830\/eu-west-1\/aps\/aws4_request, SignedHeaders=content-encoding;content-type;host;x-amz-date;x-prometheus-remote-write-version, Signature=[0-9a-f]{64}$/, "a remote_write request signs its protocol headers");
  const other = await new SigV4Signer({ region: "eu-west-1", service: "aps", accessKey: "AKIDEXAMPLE", secretKey: "x" }).sign("POST", new URL("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write"), { "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0" }, Buffer.from("bodz"), at);
  t.not(other["authorization"], rw["authorization"], "and its body (hashed into the signature)");
});

t.test("remote_write - match and drop: anchored regexes on the name and on label values (a missing label is empty); drop wins", async (t) => {
  const f = new SeriesFilter([{ name: "node_(cpu|load).*", labels: {} }, { labels: { job: "app" } }], [{ name: ".*_seconds_total", labels: { mode: "idle|" } }]);
  const d = (name: string, labels: Record<string, string>) => seriesDef(name, labels, SeriesType.Gauge);
  t.equal(f.wanted(d("node_load1", {})), true);
  t.equal(f.wanted(d("xnode_load1", {})), false, "anchored at the start");
  t.equal(f.wanted(d("node_memory_MemFree_bytes", {})), false);
  t.equal(f.wanted(d("app_requests", { job: "app" })), true, "matched by a label");
  t.equal(f.wanted(d("app_requests", { job: "application" })), false, "anchored at the end");
  t.equal(f.wanted(d("node_cpu_seconds_total", { mode: "idle" })), false, "dropped");
  t.equal(f.wanted(d("node_cpu_seconds_total", {})), false, "a missing label is the empty string: dropped");
  t.equal(f.wanted(d("node_cpu_seconds_total", { mode: "user" })), true);
  t.equal(new SeriesFilter([], []).wanted(d("anything", {})), true, "no rule: everything");
});

t.test("remote_write - a refused request splits into two whole requests whose series are the original's, in order (1.0 and 2.0)", async (t) => {
  const { splitRequest } = await import("../../../../src/root/outputs/remote-write/request-split.js");
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom("m_a", "m_b_total"), fc.constantFrom("n1", "n2", "n3"), fc.double({ noNaN: true }), fc.integer({ min: 0, max: 2 ** 42 })), { minLength: 2, maxLength: 40 }), fc.boolean(), (samples, v2) => {
      const batch = new SampleBatch();
      for (const [name, node, value, ts] of samples) batch.add(seriesDef(name, { node }, SeriesType.Gauge, { help: `help of ${name}` }), { instance: node, cluster: null }, value, ts, 0);
      const body = Buffer.from(batch.encode(v2 ? new WriteRequestV2Writer() : new WriteRequestWriter(), [["cluster", "c"]]));
      const asV1 = (b: Uint8Array): ReturnType<typeof decodeWriteRequest> => decodeWriteRequest(v2 ? v2ToV1(b) : Buffer.from(b));
      const halves = splitRequest(body, v2)!;
      t.ok(halves !== null);
      t.same([...asV1(halves[0].body).series, ...asV1(halves[1].body).series], asV1(body).series, "the halves hold the original's series, in order");
      t.equal(halves[0].samples + halves[1].samples, samples.length, "and count its samples");
    }),
    { numRuns: 100 },
  );
});
