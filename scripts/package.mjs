#!/usr/bin/env node
// `npm run package`: the release artifacts in release/, from this checkout, with no network:
//   banyan_<version>_<arch>.deb          Debian package: /opt/banyan (program, its own Node runtime),
//                                         /usr/bin/banyan, systemd units, /etc/banyan examples, Slurm hooks
//   banyan-<version>-linux-<arch>.tar.gz self-contained: bin/banyan runs the Node runtime inside
//   banyan-<version>.tgz                 npm pack (dist/ built by prepack): npm install -g ./banyan-<version>.tgz
// The production dependencies are copied from this checkout's node_modules (npm ls --omit=dev), so the
// package holds exactly what the tests ran against; the runtime is the Node that runs this script.
//   banyan-<version>-1.<arch>.rpm        RHEL family: the same tree as the .deb (rpmbuild, from Debian's rpm package)
// Options: --out DIR (default release/), --skip-npm-pack, --skip-tarball, --skip-deb, --skip-rpm,
// --fast (gzip -1), --no-build (package dist/ as it is). An artifact whose tool is missing (dpkg-deb, rpmbuild, tar) is skipped, said in one
// line with how to get it; the others are built. Each artifact's size, the installed size and the
// time are printed. The system tree is staged once and each package is built from it.
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const args = new Set(argv);
// Absolute: tar changes directory (-C) between its inputs.
const OUT = argv.includes("--out") ? resolve(argv[argv.indexOf("--out") + 1]) : join(ROOT, "release");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const VERSION = pkg.version;
const NODE_ARCH = process.arch; // x64, arm64
const DEB_ARCH = { x64: "amd64", arm64: "arm64" }[NODE_ARCH];
if (process.platform !== "linux" || DEB_ARCH === undefined) {
  console.error(`package: builds on Linux x64 or arm64 only (this is ${process.platform} ${process.arch})`);
  process.exit(2);
}

// What each artifact needs beyond Node and npm: an artifact whose tool is missing is skipped and said
// so in one line (with how to get it), the others are built.
const has = (tool) => {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
};
const skipped = [];
for (const [flag, what, tool, how] of [
  ["--skip-deb", "the .deb", "dpkg-deb", "Debian: apt-get install dpkg"],
  ["--skip-rpm", "the .rpm", "rpmbuild", "Debian: apt-get install rpm; RHEL: dnf install rpm-build"],
  ["--skip-tarball", "the tarball", "tar", "apt-get install tar"],
]) {
  if (args.has(flag) || has(tool)) continue;
  args.add(flag);
  skipped.push(`${what} (no ${tool} on PATH: ${how}; or ${flag})`);
}

const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", ...opts });
const mb = (path) => (statSync(path).size / 1e6).toFixed(1);
const t0 = Date.now();

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
// --no-build: dist/ as it is (the tests, which have just built it); otherwise built now.
if (!args.has("--no-build")) run("npm", ["run", "build", "--silent"]);
const { AGENT_NODE_FLAGS } = await import("../dist/src/agent/node-flags.js");

/** The last lines of a launcher: `node main.js "$@"`, with the agent's own Node flags for `banyan agent`. */
const launch = (node, main) => [
  "# `banyan agent` runs with the agent's Node flags (src/agent/node-flags.ts: one GC thread).",
  `[ "$1" = agent ] && exec ${node} ${AGENT_NODE_FLAGS.join(" ")} ${main} "$@"`,
  `exec ${node} ${main} "$@"`,
  "",
];

/** The program as installed: dist, data, deploy, package.json, production node_modules, node/bin/node. */
function stageProgram(dir) {
  mkdirSync(dir, { recursive: true });
  for (const entry of ["dist", "data", "deploy", "package.json", "package-lock.json", "README.md", "CHANGELOG.md"]) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  const prod = run("npm", ["ls", "--omit=dev", "--all", "--parseable"], { maxBuffer: 64 * 1024 * 1024 })
    .split("\n")
    .filter((p) => p.startsWith(join(ROOT, "node_modules") + sep));
  for (const src of prod) {
    // Each package without its own node_modules: those nested that are production dependencies are listed too.
    cpSync(src, join(dir, relative(ROOT, src)), { recursive: true, filter: (p) => p === src || !relative(src, p).split(sep).includes("node_modules") });
  }
  mkdirSync(join(dir, "node/bin"), { recursive: true });
  cpSync(process.execPath, join(dir, "node/bin/node"));
  return prod.length;
}

function write(path, text, mode = 0o644) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

const made = [];
/** gzip level: 6, or 1 with --fast (the tests' builds: the same files, a few MB larger, much sooner). */
const LEVEL = args.has("--fast") ? 1 : 6;

/**
 * The installed system tree both system packages hold: /opt/banyan, /usr/bin/banyan, the units
 * (under `unitDir`: /lib/systemd/system on Debian, /usr/lib/systemd/system on RHEL), /etc/banyan.
 */
function stageSystem(dir, unitDir) {
  const packages = stageProgram(join(dir, "opt/banyan"));
  write(join(dir, "usr/bin/banyan"), ["#!/bin/sh", ...launch("/opt/banyan/node/bin/node", "/opt/banyan/dist/src/cli/main.js")].join("\n"), 0o755);
  for (const unit of UNITS) cpSync(join(ROOT, "deploy/systemd", unit), join(dir, unitDir, unit));
  for (const conf of CONFIGS) cpSync(join(ROOT, "deploy/etc", conf), join(dir, "etc/banyan", conf));
  return packages;
}

const UNITS = ["banyan-agent.service", "banyan-root.service", "banyan-relay.service"];
const CONFIGS = ["agent.yaml", "root.yaml", "relay.yaml"];
const SUMMARY = pkg.description.split(":")[0];
const RUNTIME_NOTE = "Ships its own Node.js runtime under /opt/banyan/node (Debian 12's nodejs is 18, RHEL 8's 16; Banyan needs 20).";

const TREE = join(OUT, "tree");
const packages = stageSystem(TREE, "lib/systemd/system");
const installedKb = Number(run("du", ["-sk", TREE]).split("\t")[0]);

if (!args.has("--skip-deb")) {
  const deb = TREE;
  write(
    join(deb, "DEBIAN/control"),
    [
      "Package: banyan",
      `Version: ${VERSION}`,
      `Architecture: ${DEB_ARCH}`,
      "Maintainer: Banyan developers <banyan@localhost>",
      `Installed-Size: ${installedKb}`,
      "Depends: libc6 (>= 2.28), libstdc++6, adduser",
      "Section: admin",
      "Priority: optional",
      "Homepage: https://github.com/banyan-hpc/banyan",
      `Description: ${SUMMARY}`,
      ` ${pkg.description}`,
      ` ${RUNTIME_NOTE}`,
      "",
    ].join("\n"),
  );
  write(join(deb, "DEBIAN/conffiles"), [...CONFIGS.map((c) => `/etc/banyan/${c}`), ""].join("\n"));
  for (const script of ["postinst", "prerm", "postrm"]) cpSync(join(ROOT, "deploy/debian", script), join(deb, "DEBIAN", script));
  for (const script of ["postinst", "prerm", "postrm"]) chmodSync(join(deb, "DEBIAN", script), 0o755);
  const file = join(OUT, `banyan_${VERSION}_${DEB_ARCH}.deb`);
  run("dpkg-deb", ["--root-owner-group", "-Zgzip", `-z${LEVEL}`, "--build", deb, file]);
  rmSync(join(deb, "DEBIAN"), { recursive: true, force: true });
  made.push(`${file} (${mb(file)} MB; ${(installedKb / 1024).toFixed(0)} MB installed, ${packages} npm packages)`);
}

if (!args.has("--skip-rpm")) {
  // RHEL-family clusters: the same tree, built with rpmbuild (Debian's `rpm` package has it) from
  // the staged files; no automatic dependencies (the runtime is inside), gzip payload (RHEL 8's rpm reads it).
  const top = join(OUT, "rpmbuild");
  const rpmArch = { x64: "x86_64", arm64: "aarch64" }[NODE_ARCH];
  const spec = join(top, "banyan.spec");
  const script = (name) => readFileSync(join(ROOT, "deploy/rpm", name), "utf8").trim();
  write(
    spec,
    [
      "Name: banyan",
      `Version: ${VERSION}`,
      "Release: 1",
      `Summary: ${SUMMARY}`,
      `License: ${pkg.license}`,
      "URL: https://github.com/banyan-hpc/banyan",
      "AutoReqProv: no",
      "Requires(pre): shadow-utils",
      "%global __os_install_post %{nil}",
      "%global _build_id_links none",
      `%global _binary_payload w${LEVEL}.gzdio`,
      "%description",
      `${pkg.description}\n${RUNTIME_NOTE}`,
      "%install",
      `cp -a ${TREE}/. %{buildroot}/`,
      // RHEL keeps units under /usr/lib/systemd/system (the staged tree has Debian's /lib/systemd/system).
      "mkdir -p %{buildroot}/usr/lib/systemd && mv %{buildroot}/lib/systemd/system %{buildroot}/usr/lib/systemd/ && rm -rf %{buildroot}/lib",
      "%pre",
      script("pre"),
      "%post",
      script("post"),
      "%preun",
      script("preun"),
      "%files",
      "/opt/banyan",
      "/usr/bin/banyan",
      ...UNITS.map((u) => `/usr/lib/systemd/system/${u}`),
      "%dir /etc/banyan",
      ...CONFIGS.map((c) => `%config(noreplace) /etc/banyan/${c}`),
      "",
    ].join("\n"),
  );
  run("rpmbuild", ["-bb", "--quiet", "--target", rpmArch, "--define", `_topdir ${top}`, "--define", `_rpmdir ${OUT}`, "--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", spec]);
  rmSync(top, { recursive: true, force: true });
  const file = join(OUT, `banyan-${VERSION}-1.${rpmArch}.rpm`);
  made.push(`${file} (${mb(file)} MB)`);
}

if (!args.has("--skip-tarball")) {
  // The program of the tree, renamed banyan-<version>-linux-<arch>/, and a bin/banyan that finds it.
  const name = `banyan-${VERSION}-linux-${NODE_ARCH}`;
  const extra = join(OUT, "tarball-bin");
  write(
    join(extra, "bin/banyan"),
    [
      "#!/bin/sh",
      "# Self-contained: the Node runtime and the program live beside this script (no PATH needed;",
      "# a symlink to it is followed where readlink exists).",
      'self="$0"',
      'command -v readlink >/dev/null 2>&1 && self="$(readlink -f "$0")"',
      'here="${self%/*}/.."',
      ...launch('"$here/node/bin/node"', '"$here/dist/src/cli/main.js"'),
    ].join("\n"),
    0o755,
  );
  const file = join(OUT, `${name}.tar.gz`);
  run("tar", ["-I", `gzip -${LEVEL}`, "-cf", file, "--owner=0", "--group=0", `--transform=s,^banyan,${name},`, `--transform=s,^bin,${name}/bin,`, "-C", join(TREE, "opt"), "banyan", "-C", extra, "bin"]);
  rmSync(extra, { recursive: true, force: true });
  made.push(`${file} (${mb(file)} MB)`);
}

if (!args.has("--skip-npm-pack")) {
  const name = run("npm", ["pack", "--silent", "--pack-destination", OUT]).trim().split("\n").at(-1);
  made.push(`${join(OUT, name)} (${mb(join(OUT, name))} MB)`);
}

rmSync(TREE, { recursive: true, force: true });
for (const m of made) console.log(`wrote ${m}`);
console.log(`in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (skipped.length > 0) console.error(`package: skipped ${skipped.join("; ")}`);
if (!existsSync(OUT) || made.length === 0) process.exit(1);
