#!/usr/bin/env node
// `npm run package`: the release artifacts in release/, from this checkout, with no network:
//   banyan_<version>_<arch>.deb          Debian package: /opt/banyan (program, its own Node runtime),
//                                         /usr/bin/banyan, systemd units, /etc/banyan examples, Slurm hooks
//   banyan-<version>-linux-<arch>.tar.gz self-contained: bin/banyan runs the Node runtime inside
//   banyan-<version>.tgz                 npm pack (dist/ built by prepack): npm install -g ./banyan-<version>.tgz
// The production dependencies are copied from this checkout's node_modules (npm ls --omit=dev), so the
// package holds exactly what the tests ran against; the runtime is the Node that runs this script.
// Options: --out DIR (default release/), --skip-npm-pack, --skip-tarball, --skip-deb.
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const argv = process.argv.slice(2);
const args = new Set(argv);
const OUT = argv.includes("--out") ? argv[argv.indexOf("--out") + 1] : join(ROOT, "release");
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
const VERSION = pkg.version;
const NODE_ARCH = process.arch; // x64, arm64
const DEB_ARCH = { x64: "amd64", arm64: "arm64" }[NODE_ARCH];
if (process.platform !== "linux" || DEB_ARCH === undefined) {
  console.error(`package: builds on Linux x64 or arm64 only (this is ${process.platform} ${process.arch})`);
  process.exit(2);
}

const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], encoding: "utf8", ...opts });
const mb = (path) => (statSync(path).size / 1e6).toFixed(1);
const t0 = Date.now();

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
run("npm", ["run", "build", "--silent"]);

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

if (!args.has("--skip-deb")) {
  const deb = join(OUT, "deb");
  const opt = join(deb, "opt/banyan");
  const packages = stageProgram(opt);
  write(join(deb, "usr/bin/banyan"), '#!/bin/sh\nexec /opt/banyan/node/bin/node /opt/banyan/dist/src/cli/main.js "$@"\n', 0o755);
  for (const unit of ["banyan-agent.service", "banyan-root.service", "banyan-relay.service"]) cpSync(join(ROOT, "deploy/systemd", unit), join(deb, "lib/systemd/system", unit));
  for (const conf of ["agent.yaml", "root.yaml", "relay.yaml"]) cpSync(join(ROOT, "deploy/etc", conf), join(deb, "etc/banyan", conf));
  const installedKb = Number(run("du", ["-sk", deb]).split("\t")[0]);
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
      `Description: ${pkg.description.split(":")[0]}`,
      ` ${pkg.description}`,
      " Ships its own Node.js runtime under /opt/banyan/node (Debian 12's nodejs is 18; Banyan needs 20).",
      "",
    ].join("\n"),
  );
  write(join(deb, "DEBIAN/conffiles"), ["/etc/banyan/agent.yaml", "/etc/banyan/root.yaml", "/etc/banyan/relay.yaml", ""].join("\n"));
  for (const script of ["postinst", "prerm", "postrm"]) cpSync(join(ROOT, "deploy/debian", script), join(deb, "DEBIAN", script));
  for (const script of ["postinst", "prerm", "postrm"]) chmodSync(join(deb, "DEBIAN", script), 0o755);
  const file = join(OUT, `banyan_${VERSION}_${DEB_ARCH}.deb`);
  run("dpkg-deb", ["--root-owner-group", "-Zgzip", "--build", deb, file]);
  rmSync(deb, { recursive: true, force: true });
  made.push(`${file} (${mb(file)} MB; ${(installedKb / 1024).toFixed(0)} MB installed, ${packages} npm packages)`);
}

if (!args.has("--skip-tarball")) {
  const name = `banyan-${VERSION}-linux-${NODE_ARCH}`;
  const dir = join(OUT, name);
  stageProgram(dir);
  write(
    join(dir, "bin/banyan"),
    [
      "#!/bin/sh",
      "# Self-contained: the Node runtime and the program live beside this script (no PATH needed;",
      "# a symlink to it is followed where readlink exists).",
      'self="$0"',
      'command -v readlink >/dev/null 2>&1 && self="$(readlink -f "$0")"',
      'here="${self%/*}/.."',
      'exec "$here/node/bin/node" "$here/dist/src/cli/main.js" "$@"',
      "",
    ].join("\n"),
    0o755,
  );
  const file = join(OUT, `${name}.tar.gz`);
  run("tar", ["-C", OUT, "-czf", file, name]);
  rmSync(dir, { recursive: true, force: true });
  made.push(`${file} (${mb(file)} MB)`);
}

if (!args.has("--skip-npm-pack")) {
  const name = run("npm", ["pack", "--silent", "--pack-destination", OUT]).trim().split("\n").at(-1);
  made.push(`${join(OUT, name)} (${mb(join(OUT, name))} MB)`);
}

rmSync(join(OUT, "stage"), { recursive: true, force: true });
for (const m of made) console.log(`wrote ${m}`);
console.log(`in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
if (!existsSync(OUT)) process.exit(1);
