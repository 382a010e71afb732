import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { AGENT_NODE_FLAGS } from "../../src/agent/node-flags.js";
import { eventually } from "../fixtures/cluster.js";
import { httpText, startProcess } from "../fixtures/processes.js";
import { requireProgram } from "../fixtures/programs.js";

/**
 * The release artifacts as an administrator meets them: `npm run package` builds the .deb and the
 * self-contained tarball; the .deb installs with dpkg, puts `banyan` on PATH, runs a root and an
 * agent from the example configs, and goes away again (remove keeps the configs, purge takes them);
 * the tarball runs with no Node on PATH.
 */
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const BASE = 31900;
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const sh = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string => execFileSync(cmd, args, { encoding: "utf8", env });

t.test("package - npm run package builds the .deb and the tarball; the .deb installs, runs from PATH, removes and purges cleanly", async (t) => {
  for (const p of ["dpkg-deb", "rpmbuild", "rpm2cpio", "cpio"]) requireProgram(p);
  const out = mkdtempSync(join(tmpdir(), "banyan-package-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const t0 = Date.now();
  const built = sh(process.execPath, [join(REPO, "scripts/package.mjs"), "--out", out, "--skip-npm-pack", "--fast"]);
  t.comment(built.trim().replaceAll("\n", "; "));
  const deb = join(out, `banyan_${VERSION}_amd64.deb`);
  const tarball = join(out, `banyan-${VERSION}-linux-x64.tar.gz`);
  const rpm = join(out, `banyan-${VERSION}-1.x86_64.rpm`);
  t.ok(existsSync(deb) && existsSync(tarball) && existsSync(rpm), `all three built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  t.comment(`.deb ${(statSync(deb).size / 1e6).toFixed(1)} MB, tarball ${(statSync(tarball).size / 1e6).toFixed(1)} MB, .rpm ${(statSync(rpm).size / 1e6).toFixed(1)} MB`);

  // The .rpm (RHEL family): its metadata, its config files, its scripts; unpacked, its program runs.
  t.match(sh("rpm", ["-qp", "--queryformat", "%{NAME} %{VERSION} %{ARCH}\n", rpm]), new RegExp(`^banyan ${VERSION.replaceAll(".", "\\.")} x86_64`));
  t.same(sh("rpm", ["-qcp", rpm]).trim().split("\n").sort(), ["/etc/banyan/agent.yaml", "/etc/banyan/relay.yaml", "/etc/banyan/root.yaml"], "configs marked %config");
  const rpmFiles = sh("rpm", ["-qlp", rpm]);
  for (const f of ["/usr/bin/banyan", "/usr/lib/systemd/system/banyan-root.service", "/opt/banyan/node/bin/node", "/opt/banyan/deploy/slurm/prolog"]) t.match(rpmFiles, f, `the .rpm holds ${f}`);
  t.match(sh("rpm", ["-qp", "--scripts", rpm]), /useradd -r -g banyan/, "it creates the banyan user");
  const rpmTree = join(out, "rpm-tree");
  mkdirSync(rpmTree);
  execFileSync("sh", ["-c", `rpm2cpio "${rpm}" | cpio -idm --quiet`], { cwd: rpmTree });
  // Its units are the .deb's, byte for byte, only elsewhere: test/serial/systemd.test.ts runs them under systemd.
  for (const unit of ["banyan-agent.service", "banyan-relay.service", "banyan-root.service"]) {
    t.equal(readFileSync(join(rpmTree, "usr/lib/systemd/system", unit), "utf8"), readFileSync(join(REPO, "deploy/systemd", unit), "utf8"), `the .rpm's ${unit} is the .deb's`);
  }
  t.equal(sh(join(rpmTree, "opt/banyan/node/bin/node"), [join(rpmTree, "opt/banyan/dist/src/cli/main.js"), "--version"]).trim(), VERSION, "its program runs on its own runtime");

  // The tarball on a "machine without Node": PATH holds readlink and nothing else.
  const unpacked = join(out, "unpacked");
  mkdirSync(unpacked);
  sh("tar", ["-C", unpacked, "-xzf", tarball]);
  const bare = join(out, "bare-bin");
  mkdirSync(bare);
  symlinkSync("/usr/bin/readlink", join(bare, "readlink"));
  const version = spawnSync(join(unpacked, `banyan-${VERSION}-linux-x64/bin/banyan`), ["--version"], { encoding: "utf8", env: { PATH: bare } });
  t.equal(version.stdout.trim(), VERSION, "the tarball's banyan runs with no Node on PATH");
  const linked = join(out, "banyan-link");
  symlinkSync(join(unpacked, `banyan-${VERSION}-linux-x64/bin/banyan`), linked);
  t.equal(spawnSync(linked, ["--version"], { encoding: "utf8", env: { PATH: bare } }).stdout.trim(), VERSION, "and through a symlink to it");

  // The .deb.
  spawnSync("dpkg", ["--purge", "banyan"]);
  const i0 = Date.now();
  sh("dpkg", ["-i", deb]);
  t.comment(`dpkg -i in ${((Date.now() - i0) / 1000).toFixed(1)} s`);
  t.teardown(() => spawnSync("dpkg", ["--purge", "banyan"]));
  t.equal(sh("banyan", ["--version"], { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }).trim(), VERSION, "banyan on PATH");
  for (const f of ["/etc/banyan/agent.yaml", "/etc/banyan/root.yaml", "/etc/banyan/relay.yaml", "/lib/systemd/system/banyan-agent.service", "/lib/systemd/system/banyan-root.service", "/lib/systemd/system/banyan-relay.service", "/opt/banyan/deploy/slurm/prolog", "/opt/banyan/node/bin/node"]) {
    t.ok(existsSync(f), `installs ${f}`);
  }
  t.match(sh("getent", ["passwd", "banyan"]), /^banyan:/, "the banyan system user");
  t.ok(existsSync("/var/lib/banyan") && existsSync("/var/log/banyan"), "state and log directories");

  // A root and an agent from PATH with the example configs (only the topology and names added).
  t.equal(spawnSync("banyan", ["topology", "generate", "--nodes", "n1", "--roots", "r1", "--trees", "1", "--local", String(BASE), "-o", "/etc/banyan/topology.json"]).status, 0);
  const root = startProcess("banyan", ["root", "--name", "r1", "--set", "log.level=warn"]);
  const agent = startProcess("banyan", ["agent", "--name", "n1", "--set", "log.level=warn", "--set", `jobs.pushListen=127.0.0.1:${BASE + 90}`, "--set", `jobs.controlSocket=${out}/agent.sock`, "--set", `jobs.runDir=${out}/run`]);
  t.teardown(async () => {
    await agent.stop();
    await root.stop();
  });
  const page = async (): Promise<string> => (await httpText(`http://127.0.0.1:${BASE + 1}/metrics`)).text;
  t.ok(await eventually(async () => (await page()).includes('node_cpu_seconds_total{cpu="0",job="node",mode="idle",instance="n1"}'), 30_000, 250), "the agent's series on the root's page");
  // The launcher execs node in place (the same pid), with the agent's own flags.
  const argv = readFileSync(`/proc/${agent.proc.pid}/cmdline`, "utf8").split("\0");
  t.same(argv.slice(0, 1 + AGENT_NODE_FLAGS.length), ["/opt/banyan/node/bin/node", ...AGENT_NODE_FLAGS], "the agent runs the packaged node with the agent's node flags");
  t.notOk(readFileSync(`/proc/${root.proc.pid}/cmdline`, "utf8").split("\0").includes(AGENT_NODE_FLAGS[0]!), "the root runs without them");
  await agent.stop();
  await root.stop();

  // Remove keeps the configs; purge takes them, the user and the directories.
  sh("dpkg", ["-r", "banyan"]);
  for (const gone of ["/opt/banyan", "/usr/bin/banyan", "/lib/systemd/system/banyan-agent.service"]) t.notOk(existsSync(gone), `remove: ${gone} gone`);
  t.ok(existsSync("/etc/banyan/agent.yaml"), "remove: configs kept");
  sh("dpkg", ["--purge", "banyan"]);
  for (const gone of ["/etc/banyan/agent.yaml", "/var/lib/banyan", "/var/log/banyan"]) t.notOk(existsSync(gone), `purge: ${gone} gone`);
  t.equal(spawnSync("getent", ["passwd", "banyan"]).status, 2, "purge: the banyan user gone");
  t.ok(existsSync("/etc/banyan/topology.json"), "what the admin wrote there stays");
  rmSync("/etc/banyan", { recursive: true, force: true });
});
