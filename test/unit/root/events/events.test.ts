import { createServer } from "node:http";
import { Registry } from "prom-client";
import t from "tap";
import { silentLogger } from "../../../../src/core/logger.js";
import { AlertmanagerOutput } from "../../../../src/root/events/alertmanager.js";
import { EventLog, eventFilterOf } from "../../../../src/root/events/event-log.js";

t.test("event log - bounded ring, oldest first; the same moment seen by two roots has one id; filters", async (t) => {
  const log = new EventLog("r1", new Registry(), 3);
  for (let k = 0; k < 5; k++) log.emit("node_down", { node: `n${k}`, moment: k }, 1000 + k);
  t.same(log.recent().map((e) => e.node), ["n2", "n3", "n4"], "the last 3");
  const other = new EventLog("r2", new Registry(), 10);
  t.equal(other.emit("node_down", { node: "n4", moment: 4 }, 9999).id, log.recent()[2]!.id, "same type, node and moment: same id, whichever root and when");
  t.not(other.emit("node_down", { node: "n4", moment: 5 }).id, log.recent()[2]!.id);
  t.same(log.recent({ node: "n3" }).map((e) => e.node), ["n3"]);
  t.same(log.recent({ limit: 1 }).map((e) => e.node), ["n4"]);
  t.same(eventFilterOf(new URLSearchParams("type=node_down,node_up&since=10&limit=5")), { type: ["node_down", "node_up"], sinceMs: 10_000, limit: 5 });
  t.match(eventFilterOf(new URLSearchParams("type=bogus")), /unknown event type "bogus"/);
  t.match(eventFilterOf(new URLSearchParams("since=yesterday")), /since "yesterday"/);
});

t.test("alertmanager output - fires, re-sends with endsAt = now + 4 × resend, resolves with endsAt = resolution for 15 min; job ends are one-shot; filters per destination", async (t) => {
  const posts: { path: string; alerts: { labels: Record<string, string>; endsAt: string; annotations: Record<string, string> }[] }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      posts.push({ path: req.url ?? "", alerts: JSON.parse(body) });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const events = new EventLog("r1", new Registry());
  const t0 = Date.parse("2026-11-30T10:00:00Z");
  let clock = t0;
  const out = new AlertmanagerOutput(
    [{ url: `http://127.0.0.1:${port}/all`, timeoutMs: 2000, match: {} }, { url: `http://127.0.0.1:${port}/gpu`, timeoutMs: 2000, match: { partition: "gpu.*" } }],
    60_000,
    "http://root/api/v1/status",
    silentLogger(),
    new Registry(),
    () => clock,
  );
  out.start(events);
  t.teardown(() => out.stop());
  // Each change goes out in the output's own batch (100 ms on): wait for that post, never send beside it.
  const posted = async (path: string) => {
    for (let i = 0; i < 500 && !posts.some((p) => p.path.startsWith(path)); i++) await new Promise((r) => setTimeout(r, 10));
    return posts.find((p) => p.path.startsWith(path))!.alerts[0]!;
  };
  events.emit("node_down", { node: "n1", labels: { instance: "n1", root: "r1" }, severity: "warning", moment: 1 }, t0);
  const first = await posted("/all");
  t.match(first, { labels: { alertname: "BanyanNodeDown", instance: "n1", severity: "warning" } });
  t.equal(first.endsAt, new Date(t0 + 240_000).toISOString(), "firing: endsAt = now + 4 × resend");
  t.notOk("root" in first.labels, "the root is not a label: two roots that see the node down make one alert");
  t.notOk(posts.some((p) => p.path.startsWith("/gpu")), "a destination's filter keeps what it does not match");
  posts.length = 0;
  clock = t0 + 6000;
  events.emit("node_up", { node: "n1", labels: { instance: "n1" }, moment: 2 }, t0 + 5000);
  t.equal((await posted("/all")).endsAt, new Date(t0 + 5000).toISOString(), "resolved: endsAt = when it resolved");
  posts.length = 0;
  clock = t0 + 5000 + 16 * 60_000;
  await out.sendAll();
  t.equal(posts.length, 0, "not re-sent after 15 minutes");
  clock = t0 + 1000;
  events.emit("job_end", { job: "7", labels: { job_id: "7", user: "alice", partition: "gpu-a100" }, details: { duration_s: 60, nodes: ["n1"], cpu_seconds: 30 }, moment: "end" }, t0);
  const gpu = await posted("/gpu");
  t.match(gpu, { labels: { alertname: "BanyanJobEnded", user: "alice", job_id: "7" }, annotations: { cpu_seconds: "30" } }, "a job's end, with its user for a route to mail, to the gpu destination too");
  t.equal(gpu.endsAt, new Date(t0 + 5 * 60_000).toISOString(), "one-shot: a short endsAt");
});

t.test("event watch - a resync storm is one event when it starts and one when it ends", async (t) => {
  const { EventWatch } = await import("../../../../src/root/fleet/event-watch.js");
  const events = new EventLog("r1", new Registry());
  let waiting = 0;
  const store = { originNames: [][Symbol.iterator](), originStates: [][Symbol.iterator](), origin: () => undefined, onNodeChange: () => undefined, get resyncsWaiting() { return waiting; } };
  const jobs = { onChange: () => undefined };
  const plan = { root: "r1", trees: [0], treeOf: new Map(), plannedParent: new Map(), nodesOfTree: new Map(), rootOfTree: new Map() };
  const watch = new EventWatch(events, store as never, jobs as never, plan, { treeDegradedBelow: 0.9, startupMs: 0, resyncStormAbove: 100, stragglers: { metrics: [], belowMedian: 0.5, windowMs: 1000, minNodes: 3 } }, 0);
  for (const [w, at] of [[50, 1000], [150, 2000], [300, 3000], [80, 4000], [40, 5000], [30, 6000]] as const) {
    waiting = w;
    watch.scan(at);
  }
  const storms = events.recent({ type: ["resync_storm"] });
  t.equal(storms.length, 2, "started once, ended once");
  t.match(storms[0], { severity: "warning", details: { waiting: 150, above: 100 } });
  t.match(storms[1], { details: { waiting: 40, ended: true } }, "ended under half the threshold (80 was not)");
});

t.test("alertmanager output - an Alertmanager that does not answer is a counted, logged failure, never a throw", async (t) => {
  const registry = new Registry();
  const out = new AlertmanagerOutput([{ url: "http://127.0.0.1:1", timeoutMs: 500, match: {} }], 60_000, "http://root/api/v1/status", silentLogger(), registry);
  const events = new EventLog("r1", new Registry());
  out.start(events);
  t.teardown(() => out.stop());
  events.emit("node_down", { node: "n1", labels: { instance: "n1", tree: "0", root: "r1" }, moment: 1 });
  await out.sendAll();
  t.match(await registry.metrics(), /^banyan_alertmanager_errors_total\{url="http:\/\/127\.0\.0\.1:1"\} [1-9]/m);
});
