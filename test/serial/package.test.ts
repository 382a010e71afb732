import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t from "tap";
import { requireProgram } from "../fixtures/programs.js";

/**
 * The release artifacts as an administrator meets them: `npm run package` builds the .rpm and the
 * self-contained tarball; the .rpm holds the files, configs, scripts and units it should, and its
 * program runs unpacked; the tarball runs with no Node on PATH. The .deb is installed, run under
 * systemd, removed and purged in test/serial/systemd.test.ts.
 */
const REPO = fileURLToPath(new URL("../..", import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const sh = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string => execFileSync(cmd, args, { encoding: "utf8", env });

t.test("package - npm run package builds the .rpm and the tarball: the .rpm's files, configs, scripts and units, its program unpacked; the tarball with no Node on PATH", async (t) => {
  for (const p of ["rpmbuild", "rpm2cpio", "cpio"]) requireProgram(p);
  const out = mkdtempSync(join(tmpdir(), "banyan-package-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const t0 = Date.now();
  const built = sh(process.execPath, [join(REPO, "scripts/package.mjs"), "--out", out, "--skip-npm-pack", "--skip-deb", "--fast", "--no-build"]);
  t.comment(built.trim().replaceAll("\n", "; "));
  const tarball = join(out, `banyan-${VERSION}-linux-x64.tar.gz`);
  const rpm = join(out, `banyan-${VERSION}-1.x86_64.rpm`);
  t.ok(existsSync(tarball) && existsSync(rpm), `both built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  t.comment(`tarball ${(statSync(tarball).size / 1e6).toFixed(1)} MB, .rpm ${(statSync(rpm).size / 1e6).toFixed(1)} MB`);

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
});

t.test("package - without rpmbuild: the other artifacts are built, the .rpm's absence said in one line with how to get it", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "banyan-package-norpm-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  // This machine's PATH, less rpmbuild: every other program of it linked into one directory.
  const bin = join(out, "bin");
  mkdirSync(bin);
  for (const dir of (process.env["PATH"] ?? "").split(":").filter((d) => d !== "" && existsSync(d))) {
    for (const f of readdirSync(dir)) if (f !== "rpmbuild" && !existsSync(join(bin, f))) symlinkSync(join(dir, f), join(bin, f));
  }
  const r = spawnSync(process.execPath, [join(REPO, "scripts/package.mjs"), "--out", join(out, "release"), "--skip-npm-pack", "--skip-deb", "--fast", "--no-build"], { encoding: "utf8", env: { ...process.env, PATH: bin } });
  t.equal(r.status, 0, r.stderr.split("\n").slice(-3).join(" "));
  t.ok(existsSync(join(out, "release", `banyan-${VERSION}-linux-x64.tar.gz`)), "the tarball is built");
  t.match(r.stderr, /^package: skipped the \.rpm \(no rpmbuild on PATH: Debian: apt-get install rpm; RHEL: dnf install rpm-build; or --skip-rpm\)$/m, "one line: what was skipped and how to get it");
  t.notMatch(r.stderr, /ENOENT|\n\s+at /, "no stack trace");
  t.match(r.stdout, /in \d+\.\d s/, "the time it took, printed");
});
