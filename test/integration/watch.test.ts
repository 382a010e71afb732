import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { connect } from "node:net";
import t from "tap";
import { WatchRequestSchema, type WatchUpdate } from "../../src/gen/banyan/v1/watch_pb.js";
import { watchServiceDefinition } from "../../src/root/outputs/watch/watch-grpc.js";
import { parseRootConfig } from "../../src/root/root-config.js";
import { eventually, sleep, startCluster, type TestCluster } from "../fixtures/cluster.js";
import { readSse } from "../fixtures/sse.js";

type Element = { metric: Record<string, string>; value: [number, string]; gone?: boolean };
type SseMessage = { event: string; time_ms?: number; result?: Element[]; reason?: string };

/** The SSE watch's events as they come. */
function sse(t: Tap.Test, port: number, query: string): SseMessage[] {
  const got: SseMessage[] = [];
  readSse(t, port, `/api/v1/watch?${query}`, (event, data) => {
    if (event !== undefined) got.push({ event, ...(JSON.parse(data) as object) });
  });
  return got;
}

const WatchClient = grpc.makeGenericClientConstructor(watchServiceDefinition, "Watch");

/** The gRPC watch's updates as they come, and how it ended. */
function grpcWatch(t: Tap.Test, port: number, match: string[], extra: { agg?: string; by?: string[]; intervalMs?: number } = {}): { updates: WatchUpdate[]; ended: Promise<string> } {
  const client = new WatchClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const call = (client as unknown as { Watch(req: unknown): grpc.ClientReadableStream<WatchUpdate> }).Watch(create(WatchRequestSchema, { match, agg: extra.agg ?? "", by: extra.by ?? [], intervalMs: extra.intervalMs ?? 0 }));
  t.teardown(() => call.cancel());
  const updates: WatchUpdate[] = [];
  call.on("data", (u: WatchUpdate) => updates.push(u));
  const ended = new Promise<string>((resolve) => {
    call.on("error", (e: grpc.ServiceError) => resolve(`${grpc.status[e.code]}: ${e.details}`));
    call.on("end", () => resolve("ended"));
  });
  return { updates, ended };
}

/** What the root holds for a metric, by instance. */
function rootValues(c: TestCluster, name: string): Map<string, number> {
  const out = new Map<string, number>();
  const r = c.roots[0]!;
  for (const n of r.store.originNames) {
    const st = r.store.origin(n)!;
    if (!st.up) continue;
    const d = st.decoded;
    for (let id = 0; id < d.capacity; id++) if (d.def(id)?.name === name) out.set(n, d.value(id));
  }
  return out;
}

/** The latest value per instance over a stream of SSE messages. */
function latest(msgs: readonly SseMessage[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of msgs) for (const e of m.result ?? []) e.gone === true ? out.delete(e.metric.instance ?? "") : out.set(e.metric.instance ?? JSON.stringify(e.metric), e.value[1]);
  return out;
}

t.test("watch - SSE and gRPC: the current state first, then each change pushed, the same stream in both forms; aggregation; a one-shot query", async (t) => {
  const cluster = await startCluster({ nodes: "n[1-6]", roots: "r1", trees: 1, basePort: 18400, series: 30, intervalMs: 200, rootConfig: { watch: { grpcListen: "127.0.0.1:18450" } } });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 6, 20_000), "all up");
  const root = cluster.roots[0]!;
  t.equal(root.watchPort, 18450);
  const q = "match[]=node_context_switches_total";
  const s = sse(t, root.httpPort, q);
  const g = grpcWatch(t, root.watchPort, ["node_context_switches_total"]);
  t.ok(await eventually(() => s.length > 0 && g.updates.length > 0, 5000), "both answered");
  t.equal(s[0]!.event, "snapshot", "the first SSE event is the current state");
  t.equal(s[0]!.result!.length, 6, "one series per node");
  t.match(s[0]!.result![0]!.metric, { __name__: "node_context_switches_total", job: "synthetic" });
  t.equal(g.updates[0]!.kind, 1, "the first gRPC message is the snapshot");
  t.same(new Set(g.updates[0]!.samples.map((x) => x.labels.instance)), new Set(s[0]!.result!.map((e) => e.metric.instance)));
  t.ok(await eventually(() => s.filter((m) => m.event === "update").length >= 3, 5000), "changes are pushed as updates");

  // Freeze the nodes: the last value each stream carries is what the root holds, in both forms.
  for (const src of cluster.sources.values()) src.frozen = true;
  await sleep(1500);
  const held = rootValues(cluster, "node_context_switches_total");
  const bySse = latest(s);
  const byGrpc = new Map<string, string>();
  for (const u of g.updates) for (const x of u.samples) byGrpc.set(x.labels.instance!, String(x.value));
  t.same(Object.fromEntries([...bySse].sort()), Object.fromEntries([...held].map(([k, v]) => [k, String(v)]).sort()), "SSE ends at the root's values");
  t.same(Object.fromEntries([...byGrpc].sort()), Object.fromEntries([...bySse].sort()), "gRPC carries the same stream");

  // Aggregated: sum by (job); the one-shot query agrees.
  const agg = sse(t, root.httpPort, "match[]=node_context_switches_total&agg=sum&by=job");
  t.ok(await eventually(() => agg.length > 0, 5000));
  const sum = [...held.values()].reduce((a, b) => a + b, 0);
  t.same(agg[0]!.result!.map((e) => [e.metric, Number(e.value[1])]), [[{ job: "synthetic" }, sum]], "sum by (job) over the six nodes");
  const query = (await (await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/query?query=${encodeURIComponent("sum by (job) (node_context_switches_total)")}`)).json()) as { status: string; data: { resultType: string; result: Element[] } };
  t.match(query, { status: "success", data: { resultType: "vector" } }, "Prometheus' instant-vector shape");
  t.same(query.data.result.map((e) => [e.metric, Number(e.value[1])]), [[{ job: "synthetic" }, sum]]);
  const raw = (await (await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/query?match[]=node_context_switches_total{instance="n3"}`)).json()) as { data: { result: Element[] } };
  t.same(raw.data.result.map((e) => Number(e.value[1])), [held.get("n3")]);
  // POST with a form body, as Grafana's Prometheus data source sends it by default: the same answer.
  const form = async (body: string, type = "application/x-www-form-urlencoded"): Promise<Response> => fetch(`http://127.0.0.1:${root.httpPort}/api/v1/query`, { method: "POST", headers: { "content-type": type }, body });
  const posted = (await (await form(`query=${encodeURIComponent("sum by (job) (node_context_switches_total)")}`)).json()) as { data: { result: Element[] } };
  t.same(posted.data.result.map((e) => [e.metric, Number(e.value[1])]), [[{ job: "synthetic" }, sum]], "POST with a form body: the same answer");
  t.equal((await form("query=up", "application/json")).status, 415, "a POST body of another type: 415");
  t.equal((await form(`query=${"x".repeat(70_000)}`).catch(() => ({ status: 413 }))).status, 413, "a form body over 64 KiB: 413");
  t.equal((await fetch(`http://127.0.0.1:${root.httpPort}/metrics`, { method: "POST" })).status, 405, "other paths still take GET only");
  // The page's overview stream, asked as a plain GET: its snapshot once.
  const overview = await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/overview`);
  t.equal(overview.status, 200, "GET /api/v1/overview without a stream: 200, not 404");
  t.ok(((await overview.json()) as { items: Record<string, unknown> }).items["health"] !== undefined, "the overview's items, health among them");
  const bad = await fetch(`http://127.0.0.1:${root.httpPort}/api/v1/watch?match[]=${encodeURIComponent('{a=~"("}')}`);
  t.equal(bad.status, 400, "a bad selector is a 400");
  t.match(await bad.text(), /valid regular expression/);
  t.match(await grpcWatch(t, root.watchPort, ["up{"]).ended, /INVALID_ARGUMENT/, "and INVALID_ARGUMENT over gRPC");

  // A node goes down: its series is announced gone.
  await cluster.kill("n6");
  t.ok(await eventually(() => s.some((m) => m.result?.some((e) => e.gone === true && e.metric.instance === "n6") === true), 10_000), "gone when its node is down");
});

t.test("watch - at most one message per series per interval window, however often it changes", async (t) => {
  const cluster = await startCluster({ nodes: "n[1-3]", roots: "r1", trees: 1, basePort: 18470, series: 30, changeRate: 1, intervalMs: 100 });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 3, 20_000), "all up");
  const s = sse(t, cluster.roots[0]!.httpPort, "match[]=node_context_switches_total&interval_ms=1000");
  await sleep(3200);
  // Every message in its own one-second window of the root's clock: one per series per window at most.
  const windows = new Map<string, Set<number>>();
  const counts = new Map<string, number>();
  for (const m of s.filter((x) => x.event === "update")) {
    for (const e of m.result ?? []) {
      const inst = e.metric.instance!;
      if (!windows.has(inst)) windows.set(inst, new Set());
      windows.get(inst)!.add(Math.floor(m.time_ms! / 1000));
      counts.set(inst, (counts.get(inst) ?? 0) + 1);
    }
  }
  t.equal(windows.size, 3);
  for (const [inst, n] of counts) {
    t.equal(windows.get(inst)!.size, n, `${inst}: ${n} messages, each in a window of its own (it changed every 100 ms)`);
    // 3.2 s meet four or five windows, depending on where the watch began in the first.
    t.ok(n >= 2 && n <= 5, `${inst}: ${n} updates in 3.2 s, changing 32 times`);
  }
});

t.test("watch - a consumer that stops reading is dropped while the root keeps ingesting; watchers and series per watch are bounded", async (t) => {
  const cluster = await startCluster({
    nodes: "n[1-6]",
    roots: "r1",
    trees: 1,
    basePort: 18480,
    series: 200,
    changeRate: 1,
    intervalMs: 100,
    rootConfig: { watch: { maxPendingBytes: 20_000, maxWatchers: 3, maxSeriesPerWatch: 2000 } },
  });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 6, 20_000), "all up");
  const root = cluster.roots[0]!;
  // A raw socket that asks and never reads: the kernel's buffers fill, then the root's pending bytes.
  const sock = connect(root.httpPort, "127.0.0.1");
  t.teardown(() => sock.destroy());
  sock.on("connect", () => {
    sock.write(`GET /api/v1/watch?match[]=${encodeURIComponent('{__name__=~"node_.*"}')} HTTP/1.1\r\nHost: root\r\n\r\n`);
    sock.pause();
  });
  t.ok(await eventually(async () => /^banyan_watch_dropped_total\{reason="slow_consumer"\} 1$/m.test(await root.render()), 30_000), "dropped as a slow consumer");
  const frames = async () => Number(/^banyan_root_series_updates_total (\d+)/m.exec(await root.render())?.[1] ?? 0);
  const before = await frames();
  await sleep(500);
  t.ok((await frames()) > before, "the root kept ingesting");
  t.equal(cluster.upNodes().size, 6, "every node still up");

  const a = sse(t, root.httpPort, "match[]=node_load1");
  const b = sse(t, root.httpPort, "match[]=node_load1");
  const c = sse(t, root.httpPort, "match[]=node_load1");
  t.ok(await eventually(() => a.length > 0 && b.length > 0 && c.length > 0, 5000));
  const d = sse(t, root.httpPort, "match[]=node_load1");
  t.ok(await eventually(() => d.length > 0, 5000));
  t.match(d[0], { event: "dropped", reason: /3 watchers are open/ }, "past watch.maxWatchers");
  t.match(await root.render(), /^banyan_watch_refused_total\{reason="too_many_watchers"\} 1$/m);
  for (const s of [a, b, c]) t.equal(s[0]!.event, "snapshot");
  // Series per watch: every node_ series of six nodes is past 1,000.
  root.reload(parseRootConfig({ intervalMs: 100, watch: { maxPendingBytes: 20_000, maxWatchers: 10, maxSeriesPerWatch: 1000 } }), cluster.topology);
  const e = sse(t, root.httpPort, `match[]=${encodeURIComponent('{__name__=~"node_.*"}')}`);
  t.ok(await eventually(() => e.length > 0, 5000));
  t.match(e[0], { event: "dropped", reason: /match more than 1000 series/ }, "past watch.maxSeriesPerWatch");
});

t.test("watch - a partition's nodes ranked by a metric, and the inventory, one-shot and as streams", async (t) => {
  const cluster = await startCluster({
    nodes: "n[1-6]",
    roots: "r1",
    trees: 1,
    basePort: 18530,
    series: 30,
    intervalMs: 200,
    rootConfig: { events: { nodeLabels: [{ nodes: "n[1-4]", labels: { partition: "gpu", features: "a100,ib" } }, { nodes: "n[5-6]", labels: { partition: "cpu" } }] } },
  });
  t.teardown(() => cluster.stop());
  t.ok(await eventually(() => cluster.upNodes().size === 6, 20_000), "all up");
  const port = cluster.roots[0]!.httpPort;
  type Ranked = { partition: string; metric: string; nodes: { node: string; value: number | null; up: boolean }[] };
  const r = (await (await fetch(`http://127.0.0.1:${port}/api/v1/partitions/gpu/nodes?metric=node_context_switches_total`)).json()) as Ranked;
  t.same(r.nodes.map((n) => n.node).sort(), ["n1", "n2", "n3", "n4"], "the partition's nodes only");
  const values = r.nodes.map((n) => n.value!);
  t.same(values, [...values].sort((a, b) => b - a), "highest first");
  t.equal((await fetch(`http://127.0.0.1:${port}/api/v1/partitions/gpu/nodes?metric=bad-name`)).status, 400);
  const inv = (await (await fetch(`http://127.0.0.1:${port}/api/v1/inventory?feature=ib`)).json()) as { nodes: { node: string; partitions: string[]; features: string[]; tree: number; cpus: number }[] };
  t.same(inv.nodes.map((n) => n.node), ["n1", "n2", "n3", "n4"], "filtered by feature");
  t.match(inv.nodes[0], { partitions: ["gpu"], features: ["a100", "ib"], tree: 0, cpus: 2 });

  // The inventory as a stream: a node going down is an update of that node only.
  const got: { event: string; items: Record<string, { up: boolean }> }[] = [];
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  void fetch(`http://127.0.0.1:${port}/api/v1/inventory?watch=1`, { signal: ac.signal })
    .then(async (res) => {
      let buf = "";
      for await (const c of res.body!) {
        buf += Buffer.from(c).toString();
        let k: number;
        while ((k = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, k);
          buf = buf.slice(k + 2);
          got.push({ event: /^event: (.*)$/m.exec(block)![1]!, ...(JSON.parse(/^data: (.*)$/m.exec(block)![1]!) as { items: Record<string, { up: boolean }> }) });
        }
      }
    })
    .catch(() => undefined);
  t.ok(await eventually(() => got.length > 0, 5000));
  t.equal(Object.keys(got[0]!.items).length, 6, "the snapshot has every node");
  await cluster.kill("n6");
  t.ok(await eventually(() => got.some((g) => g.event === "update" && g.items["n6"]?.up === false), 10_000), "n6 down as an update");
  t.ok(got.filter((g) => g.event === "update").every((g) => Object.keys(g.items).every((k) => k === "n6")), "only what changed");
});
