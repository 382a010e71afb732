import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcrypt";
import t from "tap";
import { writeTopologyFile } from "../../src/topology/topology-file.js";
import { generateTopology } from "../../src/tools/topology/generate.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startBanyan, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

const BASE = 30600;

/** An HTTPS GET trusting `ca`, with basic auth when given. */
function httpsGet(url: string, ca: Buffer, auth?: string): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, ...(auth !== undefined ? { auth } : {}) }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

t.test("web config - one Prometheus web config file (TLS, bcrypt basic auth) serves node_exporter and a Banyan root alike, and a real Prometheus scrapes both", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-web-"));
  // A server certificate for 127.0.0.1, as a site would have for its exporters.
  const ssl = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", join(dir, "web.key"), "-out", join(dir, "web.crt")], { encoding: "utf8" });
  t.equal(ssl.status, 0, `openssl made a certificate ${ssl.status === 0 ? "" : ssl.stderr}`);
  // htpasswd -B writes $2y$: the file keeps that form.
  const hash = bcrypt.hashSync("s3cret", 10).replace(/^\$2b\$/, "$2y$");
  const web = join(dir, "web.yml");
  writeFileSync(web, `tls_server_config:\n  cert_file: ${join(dir, "web.crt")}\n  key_file: ${join(dir, "web.key")}\nbasic_auth_users:\n  prom: ${hash}\n`);
  const ca = readFileSync(join(dir, "web.crt"));

  const ne = startProcess(requireProgram("prometheus-node-exporter"), [`--web.listen-address=127.0.0.1:${BASE}`, `--web.config.file=${web}`, "--collector.disable-defaults", "--collector.loadavg"]);
  const { topology } = generateTopology({ nodes: ["n1"], roots: ["r1"], trees: 1, local: BASE + 10 });
  const topo = join(dir, "topology.json");
  writeTopologyFile(topo, topology);
  const root = startBanyan(["root", "--topology", topo, "--name", "r1", "--set", `web.configFile=${web}`]);
  const agent = startBanyan(["agent", "--topology", topo, "--name", "n1", "--source", "synthetic", "--set", "synthetic.series=20"]);
  t.teardown(async () => {
    for (const p of [agent, root, ne]) await p.stop();
  });
  const rootUrl = `https://127.0.0.1:${topology.roots[0]!.http.split(":")[1]}/metrics`;
  for (const [what, url] of [["node_exporter", `https://127.0.0.1:${BASE}/metrics`], ["the root", rootUrl]] as const) {
    t.ok(await eventually(async () => (await httpsGet(url, ca, "prom:s3cret").catch(() => ({ status: 0 }))).status === 200, 20_000, 200), `${what}: HTTPS with the right password: 200`);
    const none = await httpsGet(url, ca);
    t.equal(none.status, 401, `${what}: no credentials: 401`);
    t.match(String(none.headers["www-authenticate"]), /^Basic\b/, `${what}: asks for basic auth`);
    t.equal((await httpsGet(url, ca, "prom:wrong")).status, 401, `${what}: a wrong password: 401`);
    t.equal((await httpsGet(url, ca, "mallory:s3cret")).status, 401, `${what}: an unknown user: 401`);
  }
  const plain = await httpText(rootUrl.replace("https:", "http:")).catch((err: Error) => ({ status: 0, text: err.message }));
  t.not(plain.status, 200, "plain HTTP gets no page from the root");
  t.ok(await eventually(async () => /^banyan_node_up\{[^}]*instance="n1"[^}]*\} 1$/m.test((await httpsGet(rootUrl, ca, "prom:s3cret")).text), 20_000, 250), "the root's page over HTTPS");

  // A real Prometheus scrapes both with the same TLS and auth settings.
  const promPort = BASE + 50;
  writeFileSync(
    join(dir, "prometheus.yml"),
    `global: { scrape_interval: 1s }\nscrape_configs:\n${["node", "banyan"]
      .map((job, k) => `  - job_name: ${job}\n    scheme: https\n    honor_labels: true\n    tls_config: { ca_file: ${join(dir, "web.crt")} }\n    basic_auth: { username: prom, password: s3cret }\n    static_configs: [{ targets: ["127.0.0.1:${k === 0 ? BASE : rootUrl.split(":")[2]!.split("/")[0]}"] }]\n`)
      .join("")}`,
  );
  const prom = startProcess(requireProgram("prometheus"), [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`]);
  t.teardown(() => prom.stop());
  const upOf = async (job: string): Promise<string> => {
    const r = await httpText(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(`up{job="${job}"}`)}`).catch(() => ({ status: 0, text: "" }));
    return r.status === 200 ? ((JSON.parse(r.text).data.result[0]?.value?.[1] as string | undefined) ?? "") : "";
  };
  t.ok(await eventually(async () => (await upOf("node")) === "1" && (await upOf("banyan")) === "1", 30_000, 500), "Prometheus: up == 1 for node_exporter and for the root, over HTTPS with basic auth");
});
