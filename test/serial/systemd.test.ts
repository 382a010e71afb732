import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { Container, containersUnavailable, ensureBaseRootfs } from "../../bench/lab/lab-containers.js";
import { Lab, labUnavailable } from "../../bench/lab/lab-hosts.js";
import { startProcess, type Started } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";
import { AGENT_NODE_FLAGS } from "../../src/agent/node-flags.js";
import type { ClusterStatus } from "../../src/cli/topology-status.js";

/**
 * The packages under a real systemd, as an administrator installs them: five hosts of the lab
 * (two roots, a relay, two compute nodes), each a container booted with systemd as PID 1 on its own
 * address, the `.deb` installed with dpkg, and the README's "Install on a cluster" block run part by
 * part on the hosts each `# On …` line names (the copy it describes in words is done here, as rsync
 * would), beside the real programs the block names: Prometheus scraping the roots with the file it
 * renders, VictoriaMetrics taking the roots' remote_write, Alertmanager their events (each on a lab
 * host of its own, run from this machine's packages). Then what an admin does the first week: reload with a renewed certificate and a new config,
 * the journal, a killed agent brought back by its unit, stop leaving nothing behind, and the package
 * removed (configs kept) and purged.
 */
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const HOSTS = { roots: ["svc1", "svc2"], relays: ["svc3"], nodes: ["n1", "n2"] };
/** Lab hosts without a container: the programs the README's block writes to, by the names it gives them. */
const SERVICES = ["prometheus", "victoriametrics", "alertmanager"];

// Containers need root, systemd-nspawn and debootstrap, as the suite has them (CI runs as root after scripts/install-system-deps.sh).
const why = labUnavailable() ?? containersUnavailable();
if (why !== null) t.fail(`${why}: run the suite as root after scripts/install-system-deps.sh`);
t.setTimeout(600_000);

/** The README's cluster install: its parts, each with the hosts it names (`# On one host`, `# On each root`, …). */
function readmeInstallSteps(): { where: string; script: string }[] {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Install on a cluster"));
  const start = section.indexOf("```sh\n# On one host");
  if (start < 0) throw new Error("README: no `# On one host` block under Install on a cluster");
  const block = section.slice(start + 6, section.indexOf("```\n", start + 6));
  const parts: { where: string; script: string }[] = [];
  for (const line of block.split("\n")) {
    const on = /^# On (one host|each root|each relay host|every compute node|the Prometheus host)\b/.exec(line);
    if (on !== null) parts.push({ where: on[1]!, script: "" });
    else if (line.startsWith("# On ")) throw new Error(`README: a part for hosts this test does not know: ${line}`);
    parts.at(-1)!.script += line + "\n";
  }
  return parts;
}

t.test("systemd - the README's cluster install in containers with a real systemd: the .deb, mTLS, enable --now, reload, journal, Restart=, stop, remove and purge", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "banyan-systemd-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const t0 = Date.now();
  execFileSync(process.execPath, [join(REPO, "scripts/package.mjs"), "--out", out, "--skip-npm-pack", "--skip-tarball", "--skip-rpm", "--fast", "--no-build"], { encoding: "utf8" });
  const deb = `banyan_${VERSION}_amd64.deb`;
  t.comment(`.deb built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const base = ensureBaseRootfs((line) => t.comment(line));

  const names = [...HOSTS.roots, ...HOSTS.relays, ...HOSTS.nodes];
  const lab = Lab.create([...names, ...SERVICES]);
  const hosts = new Map<string, Container>();
  const services: Started[] = [];
  t.teardown(async () => {
    for (const s of services) await s.stop();
    await Promise.all([...hosts.values()].map((c) => c.stop()));
    lab.destroy();
  });
  // The roots' remote_write and events go to these from their start (the README's names for them).
  const on = (h: string, program: string, args: string[]): Started => startProcess(...lab.command(h, [requireProgram(program), ...args]));
  writeFileSync(join(out, "alertmanager.yml"), "route: { receiver: none, group_wait: 1s }\nreceivers: [{ name: none }]\n");
  services.push(on("alertmanager", "prometheus-alertmanager", [`--config.file=${join(out, "alertmanager.yml")}`, `--storage.path=${join(out, "am")}`, "--web.listen-address=0.0.0.0:9093", "--cluster.listen-address="]));
  // latencyOffset 0: answer with what was just written (the default hides the last 30 s).
  services.push(on("victoriametrics", "victoria-metrics", [`-storageDataPath=${join(out, "vm")}`, "-httpListenAddr=0.0.0.0:8428", "-search.latencyOffset=0s", "-search.disableCache"]));
  const b0 = Date.now();
  for (const c of await Promise.all(names.map((n) => Container.boot(lab, n, base, { bindReadOnly: [`${out}:/srv/release`] })))) hosts.set(c.name, c);
  t.comment(`${names.length} containers booted in ${((Date.now() - b0) / 1000).toFixed(1)} s`);
  const host = (n: string): Container => hosts.get(n)!;

  // On every host: the package (README: dpkg -i banyan_<version>_amd64.deb).
  const d0 = Date.now();
  await Promise.all([...hosts.values()].map((c) => c.shAsync(`dpkg -i /srv/release/${deb} >/dev/null`)));
  t.comment(`dpkg -i on ${hosts.size} hosts in ${((Date.now() - d0) / 1000).toFixed(1)} s`);
  t.equal(host("n1").sh("banyan --version").trim(), VERSION, "banyan on PATH inside a container");
  for (const f of ["/etc/banyan/agent.yaml", "/etc/banyan/root.yaml", "/etc/banyan/relay.yaml", "/lib/systemd/system/banyan-agent.service", "/lib/systemd/system/banyan-root.service", "/lib/systemd/system/banyan-relay.service", "/opt/banyan/deploy/slurm/prolog", "/opt/banyan/node/bin/node", "/var/lib/banyan", "/var/log/banyan"]) {
    t.ok(existsSync(join(host("n1").root, f)), `the .deb installs ${f}`);
  }
  t.match(host("n1").sh("getent passwd banyan"), /^banyan:/, "and the banyan system user");

  const where: Record<string, string[]> = {
    "one host": ["svc1"],
    "each root": HOSTS.roots,
    "each relay host": HOSTS.relays,
    "every compute node": HOSTS.nodes,
    "the Prometheus host": ["svc1"],
  };
  // What `sinfo -h -N -o %N | sort -u` prints on this cluster; and svc1 also plays the Prometheus host.
  host("svc1").sh(`printf '%s\\n' ${HOSTS.nodes.join(" ")} > /root/nodes.txt; mkdir -p /etc/prometheus`);
  for (const step of readmeInstallSteps()) {
    for (const n of where[step.where]!) host(n).sh(`cd /root\n${step.script}`);
    if (step.where === "one host") copyTopologyAndCertificates(host("svc1"), [...hosts.values()]);
  }

  // Every unit enabled and running; the root and the relay as user banyan, the agent as root.
  const units: [string, string, string][] = [...HOSTS.roots.map((n): [string, string, string] => [n, "banyan-root", "banyan"]), ...HOSTS.relays.map((n): [string, string, string] => [n, "banyan-relay", "banyan"]), ...HOSTS.nodes.map((n): [string, string, string] => [n, "banyan-agent", "root"])];
  for (const [n, unit, user] of units) {
    t.equal(host(n).exec(["systemctl", "is-enabled", unit]).stdout.trim(), "enabled", `${unit} enabled on ${n}`);
    t.equal(host(n).exec(["systemctl", "is-active", unit]).stdout.trim(), "active", `${unit} active on ${n}`);
    t.equal(host(n).sh(`stat -c %U /proc/$(systemctl show -p MainPID --value ${unit})`).trim(), user, `${unit} runs as ${user}`);
  }
  // The launcher execs the packaged node in place (the unit's main process), with the agent's own flags.
  const cmdline = (n: string, unit: string): string[] => host(n).sh(`cat /proc/$(systemctl show -p MainPID --value ${unit})/cmdline`).split("\0");
  t.same(cmdline("n1", "banyan-agent").slice(0, 1 + AGENT_NODE_FLAGS.length), ["/opt/banyan/node/bin/node", ...AGENT_NODE_FLAGS], "the agent runs the packaged node with the agent's node flags");
  t.notOk(cmdline("svc1", "banyan-root").includes(AGENT_NODE_FLAGS[0]!), "the root runs without them");
  // Both compute nodes reach a root over mutual TLS (through the relay where the topology says so).
  const status = await until(() => {
    const s = host("svc1").exec(["banyan", "topology", "status", "--json", "/etc/banyan/topology.json"]);
    if (s.status !== 0) return undefined;
    const trees = (JSON.parse(s.stdout) as ClusterStatus).trees;
    return trees.every((tr) => tr.root_reachable && tr.up === tr.nodes) && trees.reduce((sum, tr) => sum + tr.up, 0) >= HOSTS.nodes.length ? s.stdout : undefined;
  }, 30_000);
  t.ok(status, "banyan topology status: every compute node up");

  // The Prometheus host: a real Prometheus run with the file the README rendered there (a whole
  // configuration: Debian 12's Prometheus 2.42 cannot include it).
  copyFileSync(join(host("svc1").root, "etc/prometheus/banyan.yml"), join(out, "banyan.yml"));
  services.push(on("prometheus", "prometheus", [`--config.file=${join(out, "banyan.yml")}`, `--storage.tsdb.path=${join(out, "prom")}`, "--web.listen-address=0.0.0.0:9090"]));
  const query = (h: string, port: number, q: string): { metric: Record<string, string>; value: [number, string] }[] => {
    const r = spawnSync(...lab.command(h, ["curl", "-s", "--max-time", "3", "-G", "--data-urlencode", `query=${q}`, `http://${h}:${port}/api/v1/query`]), { encoding: "utf8" });
    try {
      return (JSON.parse(r.stdout) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
    } catch {
      return [];
    }
  };
  const upAt = (h: string, port: number, q: string): string[] => query(h, port, q).filter((s) => s.value[1] === "1").map((s) => s.metric["instance"]!).sort();
  t.ok(await until(() => (upAt("prometheus", 9090, 'up{job="banyan"}').length === HOSTS.roots.length ? true : undefined), 60_000), "Prometheus scrapes both roots with the rendered file");
  // (The relay host is a node of the trees too: it shows up beside the compute nodes.)
  const nodesUp = (h: string, port: number, q: string): string[] | undefined => {
    const up = upAt(h, port, q).filter((n) => HOSTS.nodes.includes(n));
    return up.length === HOSTS.nodes.length ? up : undefined;
  };
  t.same(await until(() => nodesUp("prometheus", 9090, 'max by (instance) (banyan_node_up{job="banyan"})'), 30_000), HOSTS.nodes, "and every compute node is up there, through the roots");
  t.ok(await until(() => (query("prometheus", 9090, 'node_load1{instance="n1"}').length > 0 ? true : undefined), 30_000), "a node's own series at Prometheus (node_load1 of n1)");
  // VictoriaMetrics: the roots' remote_write, the nodes' series and the roots' own (written every 15 s).
  t.ok(await until(() => (query("victoriametrics", 8428, 'node_load1{instance="n2"}').length > 0 ? true : undefined), 60_000), "remote_write: n2's node_load1 at VictoriaMetrics");
  t.same(await until(() => nodesUp("victoriametrics", 8428, "max by (instance) (banyan_node_up)"), 60_000), HOSTS.nodes, "remote_write: the roots' own banyan_node_up too, every node up");
  const metrics = (root: string): string => execFileSync(...lab.command("svc3", ["curl", "-s", "--max-time", "3", `http://${root}:7471/metrics`]), { encoding: "utf8" });
  for (const n of HOSTS.nodes) t.ok(HOSTS.roots.some((r) => new RegExp(`banyan_node_up\\{[^}]*instance="${n}"[^}]*\\} 1`).test(metrics(r))), `${n} up at a root's /metrics, scraped from another host`);
  t.comment(`the root's open files limit: ${host("svc1").sh("grep 'Max open files' /proc/$(systemctl show -p MainPID --value banyan-root)/limits").replace(/\s+/g, " ").trim()} (the unit asks 65536; a container gets at most the machine's own limit)`);
  const journal = host("svc1").sh("journalctl -u banyan-root --no-pager -o cat");
  t.match(journal, /mutual TLS on the tree/, "journalctl -u banyan-root: the root's own log");
  t.match(journal, /root svc1 ready/);

  // Reload: a renewed certificate and a new config key, read without a restart.
  const pid = host("svc1").sh("systemctl show -p MainPID --value banyan-root").trim();
  const oldSerial = /"serial":"([0-9A-F]+)"/.exec(journal)?.[1];
  host("svc1").sh(
    [
      "banyan certs --topology /etc/banyan/topology.json --out /etc/banyan/tls --names svc1 --force --owner banyan >/dev/null",
      "install -o banyan -g banyan -m 0600 /etc/banyan/tls/svc1.key /etc/banyan/tls/node.key",
      "install -o banyan -g banyan -m 0644 /etc/banyan/tls/svc1.crt /etc/banyan/tls/node.crt",
      `echo 'aggregates: [{ record: "cluster:node_load1:sum", expr: sum, metric: node_load1 }]' >> /etc/banyan/root.yaml`,
      "systemctl reload banyan-root",
    ].join("\n"),
  );
  const reloaded = await until(() => /root reloaded its config and topology/.exec(host("svc1").sh("journalctl -u banyan-root --no-pager -o cat")) ? host("svc1").sh("journalctl -u banyan-root --no-pager -o cat | grep 'root reloaded'") : undefined, 15_000);
  const newSerial = /"serial":"([0-9A-F]+)"/.exec(reloaded ?? "")?.[1];
  t.ok(oldSerial !== undefined && newSerial !== undefined && newSerial !== oldSerial, `the reload took the renewed certificate (serial ${oldSerial} → ${newSerial})`);
  t.match(reloaded ?? "", /"aggregates":1/, "and the new config");
  t.equal(host("svc1").sh("systemctl show -p MainPID --value banyan-root").trim(), pid, "the same process (a reload, not a restart)");
  t.ok(await until(() => (/cluster:node_load1:sum/.test(metrics("svc1")) ? true : undefined), 15_000), "the new aggregate on /metrics");

  // Restart=on-failure: a killed agent comes back; its node is up again.
  const agentPid = host("n1").sh("systemctl show -p MainPID --value banyan-agent").trim();
  host("n1").sh(`kill -KILL ${agentPid}`);
  const again = await until(() => {
    const p = host("n1").sh("systemctl show -p MainPID --value banyan-agent").trim();
    return p !== "0" && p !== agentPid && host("n1").exec(["systemctl", "is-active", "banyan-agent"]).stdout.trim() === "active" ? p : undefined;
  }, 20_000);
  t.ok(again, `the agent killed with SIGKILL is started again by its unit (pid ${agentPid} → ${again})`);
  t.match(host("n1").sh("journalctl -u banyan-agent --no-pager -o cat"), /Scheduled restart job|Main process exited, code=killed|ready/, "the journal tells of the restart");

  // Events: a compute node stopped is BanyanNodeDown at the Alertmanager the roots were given.
  host("n2").sh("systemctl stop banyan-agent");
  const alerts = (): { labels: Record<string, string> }[] => {
    const r = spawnSync(...lab.command("alertmanager", ["curl", "-s", "--max-time", "3", "http://alertmanager:9093/api/v2/alerts"]), { encoding: "utf8" });
    try {
      return JSON.parse(r.stdout) as { labels: Record<string, string> }[];
    } catch {
      return [];
    }
  };
  t.ok(await until(() => (alerts().some((a) => a.labels["alertname"] === "BanyanNodeDown" && a.labels["instance"] === "n2") ? true : undefined), 60_000), "n2 stopped: BanyanNodeDown for n2 at the Alertmanager");

  // The Slurm prolog always exits 0 (a failing one drains the node), but a failure reaches the journal:
  // here a runtime that cannot run Banyan (as BANYAN_NODE=/usr/bin/node, Debian's Node 18, would be).
  const prolog = host("n2").exec(["env", "SLURM_JOB_ID=4242", "BANYAN_NODE=/bin/false", "/opt/banyan/deploy/slurm/prolog"]);
  t.equal(prolog.status, 0, "the prolog exits 0 whatever happens");
  t.ok(await until(() => (/job 4242: banyan job start failed \(exit 1, node \/bin\/false\)/.test(host("n2").sh("journalctl -t banyan-prolog --no-pager -o cat || true")) ? true : undefined), 10_000), "its failure is in the journal (journalctl -t banyan-prolog)");

  // dpkg -r while the agent runs: the package stops it first, keeps the configs; purge takes them,
  // the user, the directories and the unit's enablement, and leaves what the admin wrote.
  host("n1").sh("dpkg -r banyan >/dev/null");
  t.equal(host("n1").exec(["systemctl", "is-active", "banyan-agent"]).stdout.trim(), "inactive", "remove: the running agent stopped");
  t.equal(host("n1").sh("grep -l -a '/opt/banya[n]' /proc/[0-9]*/cmdline 2>/dev/null || true").trim(), "", "remove: no banyan process left");
  for (const gone of ["/opt/banyan", "/usr/bin/banyan", "/lib/systemd/system/banyan-agent.service"]) t.notOk(existsSync(join(host("n1").root, gone)), `remove: ${gone} gone`);
  t.ok(existsSync(join(host("n1").root, "etc/banyan/agent.yaml")), "remove: configs kept");
  host("n1").sh("mkdir -p /var/lib/banyan/jobs && echo '{}' > /var/lib/banyan/jobs/7.n1.json");
  const purge = host("n1").exec(["dpkg", "--purge", "banyan"]);
  t.match(purge.stderr, /banyan: purge removes \/var\/lib\/banyan with its 1 job reports/, "purge says it removes the job reports");
  for (const gone of ["/etc/banyan/agent.yaml", "/var/lib/banyan", "/var/log/banyan", "/etc/systemd/system/multi-user.target.wants/banyan-agent.service"]) t.notOk(existsSync(join(host("n1").root, gone)), `purge: ${gone} gone`);
  t.equal(host("n1").exec(["getent", "passwd", "banyan"]).status, 2, "purge: the banyan user gone");
  t.ok(existsSync(join(host("n1").root, "etc/banyan/topology.json")), "purge: what the admin wrote there stays");
  units.splice(units.findIndex(([n]) => n === "n1"), 1);

  // Stop: every unit drains and leaves no process behind.
  for (const [n, unit] of units) {
    host(n).sh(`systemctl stop ${unit}`);
    t.equal(host(n).exec(["systemctl", "is-active", unit]).stdout.trim(), "inactive", `${unit} stopped on ${n}`);
    t.equal(host(n).sh("grep -l -a '/opt/banya[n]' /proc/[0-9]*/cmdline 2>/dev/null || true").trim(), "", `no banyan process left on ${n}`);
  }
  t.notMatch(host("svc1").sh("journalctl -u banyan-root --no-pager -o cat"), /uncaught|FATAL/i, "the root's journal has no crash");
});

t.test("systemd - containers of a run killed with SIGKILL are removed by banyan bench --cleanup", async (t) => {
  const base = ensureBaseRootfs((line) => t.comment(line));
  const lab = (m: string): string => `${REPO}dist/bench/lab/${m}`;
  // A process that boots a container on a lab host, then dies without cleaning up.
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", `
    const { Lab } = await import(${JSON.stringify(lab("lab-hosts.js"))});
    const { Container } = await import(${JSON.stringify(lab("lab-containers.js"))});
    const l = Lab.create(["k1"]);
    await Container.boot(l, "k1", ${JSON.stringify(base)});
    console.log(l.runId);
    process.kill(process.pid, "SIGKILL");`], { encoding: "utf8", timeout: 60_000 });
  const runId = child.stdout.trim();
  t.match(runId, /^[0-9a-f]{4}$/, `the killed run booted its container (${child.stderr.trim()})`);
  const leftovers = (): string[] => [
    ...(spawnSync("pgrep", ["-f", `systemd-nspawn .*/banyan-lab/${runId}/`], { encoding: "utf8" }).stdout ?? "").split("\n").filter((l) => l !== "").map((p) => `nspawn pid ${p}`),
    ...(spawnSync("mount", [], { encoding: "utf8" }).stdout ?? "").split("\n").filter((l) => l.includes(`banyan-lab/${runId}/`)),
    ...["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"].filter((d) => existsSync(join(d, `banyan-lab-${runId}-k1`))),
    ...(existsSync(`/var/tmp/banyan-lab/${runId}`) ? [`/var/tmp/banyan-lab/${runId}`] : []),
  ];
  t.not(leftovers().length, 0, "it left its container behind");
  const cleanup = spawnSync(process.execPath, [join(REPO, "dist/src/cli/main.js"), "bench", "--cleanup"], { encoding: "utf8" });
  t.equal(cleanup.status, 0, cleanup.stderr);
  t.match(cleanup.stdout, runId, "--cleanup names the dead run");
  t.same(leftovers(), [], "and nothing of it is left: no nspawn, no overlay, no cgroup, no files");
});

/** The first value `get` gives within `timeoutMs` (asked every 250 ms), or undefined. */
async function until<T>(get: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== undefined || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * What the README says to copy after the one-host part: the topology and the CA's certificate to
 * every host, each host's own certificate and key as node.crt and node.key, owner and mode kept
 * (by name: the owner is the user banyan of the host it goes to).
 */
function copyTopologyAndCertificates(from: Container, to: readonly Container[]): void {
  for (const c of to) {
    c.sh("mkdir -p /etc/banyan/tls");
    const files: [string, string][] = [
      ["etc/banyan/topology.json", "etc/banyan/topology.json"],
      ["etc/banyan/tls/ca.crt", "etc/banyan/tls/ca.crt"],
      [`etc/banyan/tls/${c.name}.crt`, "etc/banyan/tls/node.crt"],
      [`etc/banyan/tls/${c.name}.key`, "etc/banyan/tls/node.key"],
    ];
    for (const [src, dst] of files) {
      if (c === from && src === dst) continue;
      const source = join(from.root, src);
      const owner = from.sh(`stat -c %U:%G /${src}`).trim();
      copyFileSync(source, join(c.root, dst));
      const [uid, gid] = c.sh(`echo $(id -u ${owner.split(":")[0]}) $(getent group ${owner.split(":")[1]} | cut -d: -f3)`).trim().split(" ").map(Number);
      chownSync(join(c.root, dst), uid!, gid!);
      chmodSync(join(c.root, dst), statSync(source).mode & 0o777);
    }
  }
}
