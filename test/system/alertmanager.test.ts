import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { readTopologyFile } from "../../src/topology/topology-file.js";
import { banyan } from "../fixtures/banyan-cli.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess, type Started } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 22600;

interface Notification {
  status: string;
  alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string>; generatorURL: string }[];
}

t.test("alertmanager - a node killed fires BanyanNodeDown through a real Alertmanager's routing to a webhook, and it resolves when the node returns", async (t) => {
  const alertmanager = requireProgram("prometheus-alertmanager");
  const dir = mkdtempSync(join(tmpdir(), "banyan-am-"));
  // The webhook receiver Alertmanager's routes deliver to.
  const got: Notification[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      got.push(JSON.parse(body) as Notification);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(BASE + 91, "127.0.0.1", () => r()));
  t.teardown(() => receiver.close());
  writeFileSync(
    join(dir, "alertmanager.yml"),
    `route:\n  receiver: ops\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: ops\n    webhook_configs:\n      - url: http://127.0.0.1:${BASE + 91}/ops\n        send_resolved: true\n`,
  );
  const am = startProcess(alertmanager, [`--config.file=${join(dir, "alertmanager.yml")}`, `--storage.path=${join(dir, "am")}`, `--web.listen-address=127.0.0.1:${BASE + 90}`, "--cluster.listen-address="]);
  const topo = join(dir, "topology.json");
  t.equal(banyan(["topology", "generate", "--nodes", "n[1-4]", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", topo]).status, 0, "topology");
  const topology = readTopologyFile(topo);
  const leaf = [...topology.nodes].find(([, n]) => n.children.length === 0)![0];
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--set", "deadAfterMs=2000", "--set", `events.alertmanagers=[{url: "http://127.0.0.1:${BASE + 90}"}]`, "--set", "events.resendMs=2000"]);
  const agents = new Map<string, Started>();
  const agentOf = (n: string): Started => startBanyan(["agent", "--topology", topo, "--name", n, "--source", "synthetic", "--set", "synthetic.series=10"]);
  for (const n of topology.nodes.keys()) agents.set(n, agentOf(n));
  t.teardown(async () => {
    for (const a of agents.values()) await a.stop();
    await root.stop();
    await am.stop();
  });
  const rootHttp = `http://${topology.roots[0]!.http}`;
  t.ok(await eventually(async () => (await httpText(`http://127.0.0.1:${BASE + 90}/-/ready`)).status === 200, 20_000, 250), "Alertmanager is up");
  const allUp = async (): Promise<boolean> => {
    const page = (await httpText(`${rootHttp}/metrics`)).text;
    return [...topology.nodes.keys()].every((n) => page.includes(`banyan_node_up{instance="${n}",root="r1"} 1`));
  };
  t.ok(await eventually(allUp, 30_000, 250), "every node up");

  await agents.get(leaf)!.stop("SIGKILL");
  const firing = (): Notification["alerts"][number] | undefined => got.flatMap((n) => n.alerts).find((a) => a.labels["alertname"] === "BanyanNodeDown" && a.labels["instance"] === leaf && a.status === "firing");
  t.ok(await eventually(() => firing() !== undefined, 20_000, 250), `BanyanNodeDown for ${leaf} reached the webhook through Alertmanager`);
  t.match(firing(), { labels: { instance: leaf, severity: "warning" }, annotations: { root: "r1" }, generatorURL: new RegExp(`/api/v1/status$`) });
  t.match((await httpText(`${rootHttp}/api/v1/events?type=node_down`)).text, new RegExp(`"node":"${leaf}"`), "and it is an event at the root");

  agents.set(leaf, agentOf(leaf));
  const resolved = (): boolean => got.flatMap((n) => n.alerts).some((a) => a.labels["alertname"] === "BanyanNodeDown" && a.labels["instance"] === leaf && a.status === "resolved");
  t.ok(await eventually(resolved, 30_000, 250), "resolved when the node came back");
  t.match((await httpText(`${rootHttp}/metrics`)).text, /^banyan_alertmanager_alerts_sent_total\{url="http:\/\/127\.0\.0\.1:\d+"\} [1-9]/m, "sends counted");
});
