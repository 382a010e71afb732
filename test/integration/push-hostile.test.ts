import { request } from "node:http";
import t from "tap";
import { DEFAULT_PUSH_POLICY, PushServer, type PushAuth, type PushPolicy } from "../../src/agent/push-server.js";
import { silentLogger } from "../../src/core/logger.js";
import { seriesKey, type SeriesDef } from "../../src/series/series-def.js";
import type { SampleTarget } from "../../src/node/source.js";

/** Job 7's token is "t7"; the node's push token is "node-token". */
const auth: PushAuth = {
  jobOfToken: (tok) => (tok === "t7" ? "7" : undefined),
  jobLabels: (id) => (id === "7" ? { slurm_job_id: "7", user: "alice", partition: "gpu" } : undefined),
  isNodeToken: (tok) => tok === "node-token",
};

async function server(t: Tap.Test, policy: Partial<PushPolicy> = {}): Promise<{ push: PushServer; send(method: string, path: string, body?: string, token?: string): Promise<{ status: number; text: string }>; port: number }> {
  const push = new PushServer("127.0.0.1:0", auth, silentLogger(), { ...DEFAULT_PUSH_POLICY, ...policy });
  const port = await push.listen();
  t.teardown(() => push.stop());
  return {
    push,
    port,
    async send(method, path, body = "", token) {
      const headers: Record<string, string> = token === undefined ? {} : { authorization: token.startsWith("Basic ") ? token : `Bearer ${token}` };
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, ...(method === "DELETE" ? {} : { body }) });
      return { status: res.status, text: await res.text() };
    },
  };
}

/** What the push source writes to the sampler, by series key. */
function collected(push: PushServer, throwOn?: string): Map<string, number> {
  const byId: SeriesDef[] = [];
  const values = new Map<string, number>();
  const target: SampleTarget = {
    define(def) {
      if (def.name === throwOn) throw new Error(`cannot take ${def.name}`);
      byId.push(def);
      return byId.length - 1;
    },
    set(id, v) {
      const d = byId[id]!;
      values.set(seriesKey(d.name, d.labels), v);
    },
    remove() {},
  };
  push.collect(target);
  return values;
}

t.test("push hostile - pushes cannot write the node's own series, pass the wire's limits, or grow without bound; nothing of a refused push is kept", async (t) => {
  const { push, send } = await server(t, { maxSeriesPerGroup: 50, maxGroups: 3, maxSeries: 80, maxBodyBytes: 64 * 1024, reservedJobs: ["node", "relay"] });
  t.equal((await send("PUT", "/metrics/job/app", "work_done_total 5\n")).status, 200, "an honest push");
  for (const [body, why] of [
    ["banyan_job_cpu_seconds_total 1e9\n", "what the root's job accounting sums"],
    ['banyan_node_parent_info{parent="evil"} 1\n', "the node's place in the trees"],
    ["node_load1 99\n", "a node_exporter series"],
    ["slurm_nodes_alloc 0\n", "the scheduler's"],
  ] as const) {
    const r = await send("PUT", "/metrics/job/sneaky", body);
    t.equal(r.status, 400, `refused: ${why} (${r.text.trim()})`);
  }
  t.equal((await send("PUT", "/metrics/job/node", "my_metric 1\n")).status, 400, "the node's own job name is refused (its series would shadow the collectors')");
  const long = `label_bomb{path="${"x".repeat(5000)}"} 1\n`;
  const r = await send("PUT", "/metrics/job/bomb", long);
  t.equal(r.status, 400, `a label longer than the wire carries: refused at push time (${r.text.trim().slice(0, 80)})`);
  const manyLabels = `wide{${Array.from({ length: 40 }, (_, k) => `l${k}="v"`).join(",")}} 1\n`;
  t.equal((await send("PUT", "/metrics/job/wide", manyLabels)).status, 400, "more labels than the wire carries: refused");
  const big = Array.from({ length: 51 }, (_, k) => `s{k="${k}"} 1`).join("\n") + "\n";
  t.equal((await send("PUT", "/metrics/job/big", big)).status, 413, "past the series of one group");
  t.equal((await send("PUT", "/metrics/job/huge", "x 1\n".repeat(20_000))).status, 413, "past the body limit");
  const forty = (g: string): string => Array.from({ length: 40 }, (_, k) => `${g}{k="${k}"} 1`).join("\n") + "\n";
  t.equal((await send("PUT", "/metrics/job/g2", forty("a"))).status, 200);
  t.equal((await send("PUT", "/metrics/job/g3", forty("b"))).status, 429, "past the series of all groups (1 + 40 + 40 > 80)");
  t.equal((await send("PUT", "/metrics/job/g3", "c 1\n")).status, 200);
  t.equal((await send("PUT", "/metrics/job/g4", "d 1\n")).status, 429, "past the number of groups");
  const values = collected(push);
  t.same(
    [...values.keys()].filter((k) => !k.startsWith("push_")).map((k) => k.split("{")[0]).sort(),
    ["a", ...Array(39).fill("a"), "c", "work_done_total"].sort(),
    "only the accepted pushes are kept",
  );
  t.notOk([...values.keys()].some((k) => /^(banyan_|node_|slurm_|label_bomb|wide)/.test(k)), "nothing of the refused ones");
});

t.test("push hostile - one group that cannot be sampled never stops the others", async (t) => {
  const { push, send } = await server(t);
  for (const g of ["a", "b", "c"]) t.equal((await send("PUT", `/metrics/job/${g}`, `m_${g} 1\n`)).status, 200);
  const values = collected(push, "m_a");
  t.ok(values.has(seriesKey("m_b", [["job", "b"]])) && values.has(seriesKey("m_c", [["job", "c"]])), "the groups after the bad one are sampled");
});

t.test("push hostile - with requireToken every push needs one; an empty token never authenticates; a job's group is its job's", async (t) => {
  const { send } = await server(t, { requireToken: true });
  t.equal((await send("PUT", "/metrics/job/app", "m 1\n")).status, 401, "no token: refused");
  t.equal((await send("PUT", "/metrics/job/app", "m 1\n", `Basic ${Buffer.from("user:").toString("base64")}`)).status, 403, "an empty Basic password: refused");
  t.equal((await send("PUT", "/metrics/job/app", "m 1\n", "wrong")).status, 403);
  t.equal((await send("PUT", "/metrics/job/app", "m 1\n", "node-token")).status, 200, "the node's push token");
  t.equal((await send("PUT", "/metrics/job/train", "loss 0.5\n", "t7")).status, 200, "a job's token");
  t.equal((await send("PUT", "/metrics/job/train", "loss 9\n", "node-token")).status, 403, "another token cannot overwrite a job's group");
  t.equal((await send("DELETE", "/metrics/job/train", "", "node-token")).status, 403, "nor delete it");
  t.equal((await send("DELETE", "/metrics/job/train", "", "t7")).status, 202, "its own job can");
});

t.test("push hostile - requests in flight are capped: past the cap, a 503 at once", async (t) => {
  const { send, port } = await server(t, { http: { ...DEFAULT_PUSH_POLICY.http, maxConcurrentRequests: 2 } });
  // Two pushes that send their headers and never their body.
  const stuck = [0, 1].map(() => {
    const req = request({ host: "127.0.0.1", port, method: "PUT", path: "/metrics/job/slow", headers: { "content-length": "1000" } });
    req.on("error", () => undefined);
    req.write("x");
    return req;
  });
  t.teardown(() => stuck.forEach((r) => r.destroy()));
  await new Promise((r) => setTimeout(r, 200));
  const busy = await send("PUT", "/metrics/job/app", "m 1\n");
  t.equal(busy.status, 503, `a third is turned away (${busy.text.trim()})`);
  stuck.forEach((r) => r.destroy());
  await new Promise((r) => setTimeout(r, 200));
  t.equal((await send("PUT", "/metrics/job/app", "m 1\n")).status, 200, "and taken once the others are gone");
});

t.test("push hostile - behind a web config with basic auth, the user's password goes in Authorization and the job's token in X-Push-Token", async (t) => {
  const { mkdtempSync, writeFileSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const bcrypt = (await import("bcrypt")).default;
  const { readWebConfig } = await import("../../src/core/web-config.js");
  const dir = mkdtempSync(join(tmpdir(), "banyan-pushweb-"));
  writeFileSync(join(dir, "web.yml"), `basic_auth_users:\n  pusher: "${bcrypt.hashSync("pw", 4)}"\n`);
  const { port } = await server(t, { web: readWebConfig(join(dir, "web.yml"), "jobs.push.webConfigFile") });
  const put = async (path: string, headers: Record<string, string>): Promise<number> => (await fetch(`http://127.0.0.1:${port}${path}`, { method: "PUT", headers, body: "m 1\n" })).status;
  const user = `Basic ${Buffer.from("pusher:pw").toString("base64")}`;
  t.equal(await put("/metrics/job/app", {}), 401, "no credentials");
  t.equal(await put("/metrics/job/app", { authorization: user }), 200, "the user's password");
  t.equal(await put("/metrics/job/x/slurm_job_id/7", { authorization: user }), 401, "a job's group still needs the job's token");
  t.equal(await put("/metrics/job/x/slurm_job_id/7", { authorization: user, "x-push-token": "t7" }), 200, "given in X-Push-Token");
});
