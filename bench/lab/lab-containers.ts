import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./lab-shell.js";

/**
 * Hosts with a real systemd: each a `systemd-nspawn --boot` container of a Debian root file system,
 * joined to a lab host's network namespace (its address, its hosts file). What runs inside is what
 * runs on a cluster's host: systemd as PID 1, the `.deb` installed with dpkg, units started with
 * systemctl, logs in the journal.
 *
 * The base root file system (`debootstrap --variant=minbase --include=systemd,dbus`, of this
 * machine's own Debian release and mirror) is built once into CACHE_DIR and kept; each container
 * boots on an overlay of it whose writable layer lives in WORK_DIR/<run id>/<name>. Each container is
 * started from a cgroup of its own (containers started from one cgroup collide on nspawn's `payload`),
 * named after the lab's run id, and `removeContainers` (called by the lab's own removal, so also by
 * `banyan bench --cleanup`) stops what is left, unmounts and removes it.
 *
 * Cost (this 2-core VM): the base 40-70 s once (241 MB); a container boots to `running` in ~0.4 s and
 * takes ~11 MiB idle, plus what its daemons take.
 */
export const CACHE_DIR = "/var/cache/banyan-lab";
export const WORK_DIR = "/var/tmp/banyan-lab";
/** Bumped when what the base holds changes: a cached base of another recipe is rebuilt. */
const RECIPE = "minbase+systemd,dbus;machine-id empty;apt cleaned;v1";
const PATH_INSIDE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Why this machine cannot boot containers, or null when it can. */
/** What a container needs of its lab (Lab, in lab-hosts.ts, which removes its containers with it). */
export interface LabOfContainers {
  readonly runId: string;
  host(name: string): { readonly ns: string };
}

export function containersUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "systemd containers need root";
  if (spawnSync("systemd-nspawn", ["--version"]).status !== 0) return "systemd containers need systemd-nspawn (Debian: systemd-container, at the installed systemd's version)";
  if (spawnSync("nsenter", ["--version"]).status !== 0) return "systemd containers need nsenter (Debian: util-linux)";
  if (cgroupRoots().length === 0) return "systemd containers need a cgroup file system under /sys/fs/cgroup";
  return null;
}

/** The cached base root file system, built first if missing (debootstrap: needs this machine's Debian mirror). */
export function ensureBaseRootfs(log: (line: string) => void = () => {}): string {
  const codename = osRelease().VERSION_CODENAME ?? "bookworm";
  const dir = join(CACHE_DIR, `rootfs-${codename}`);
  const stamp = join(dir, ".banyan-recipe");
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === RECIPE) return dir;
  if (spawnSync("debootstrap", ["--version"]).status !== 0) throw new Error("building the containers' root file system needs debootstrap (Debian: debootstrap)");
  const tmp = `${dir}.building-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(CACHE_DIR, { recursive: true });
  const mirror = aptMirror();
  log(`building the containers' root file system (debootstrap ${codename} from ${mirror}, once; kept in ${dir})`);
  const t0 = Date.now();
  try {
    run("debootstrap", ["--variant=minbase", "--include=systemd,dbus", codename, tmp, mirror]);
    // One machine id for every container otherwise: empty, so each boot makes its own.
    writeFileSync(join(tmp, "etc/machine-id"), "");
    rmSync(join(tmp, "var/lib/dbus/machine-id"), { force: true });
    mkdirSync(join(tmp, "var/lib/dbus"), { recursive: true });
    symlinkSync("/etc/machine-id", join(tmp, "var/lib/dbus/machine-id"));
    rmSync(join(tmp, "etc/hostname"), { force: true });
    rmSync(join(tmp, "var/cache/apt/archives"), { recursive: true, force: true });
    mkdirSync(join(tmp, "var/cache/apt/archives/partial"), { recursive: true });
    rmSync(join(tmp, "var/lib/apt/lists"), { recursive: true, force: true });
    mkdirSync(join(tmp, "var/lib/apt/lists/partial"), { recursive: true });
    writeFileSync(join(tmp, ".banyan-recipe"), RECIPE);
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  log(`root file system built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return dir;
}

export interface ExecResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface BootOptions {
  /** Host paths bound read-only into the container (`host:inside`). */
  readonly bindReadOnly?: readonly string[];
}

/** One booted container on a lab host. */
export class Container {
  private constructor(
    readonly name: string,
    /** Its root as this machine sees it: files written here are the container's. */
    readonly root: string,
    private readonly nspawn: ChildProcess,
    /** Its systemd (PID 1 inside) as this machine numbers it. */
    readonly leader: number,
  ) {}

  /**
   * Boots `base` (from `ensureBaseRootfs`) as lab host `host`: its hostname is the host's name, its
   * network the host's namespace, its /etc/hosts the lab's. Resolves when systemd inside is up
   * (`running`, or `degraded`: a unit of the base that fails in a container does not stop the test).
   */
  static async boot(lab: LabOfContainers, host: string, base: string, options: BootOptions = {}): Promise<Container> {
    const why = containersUnavailable();
    if (why !== null) throw new Error(why);
    const h = lab.host(host);
    const dir = join(WORK_DIR, lab.runId, host);
    for (const d of ["upper", "work", "merged"]) mkdirSync(join(dir, d), { recursive: true });
    const merged = join(dir, "merged");
    run("mount", ["-t", "overlay", `banyan-lab-${lab.runId}`, "-o", `lowerdir=${base},upperdir=${join(dir, "upper")},workdir=${join(dir, "work")}`, merged]);
    writeFileSync(join(merged, "etc/hosts"), readFileSync(`/etc/netns/${h.ns}/hosts`, "utf8"));
    const group = cgroupName(lab.runId, host);
    const enter: string[] = [];
    for (const root of cgroupRoots()) {
      mkdirSync(join(root, group), { recursive: true });
      enter.push(`echo $$ > ${join(root, group, "cgroup.procs")}`);
    }
    const args = ["-D", merged, "--boot", "--register=no", "--keep-unit", "-M", host, "--console=read-only", `--network-namespace-path=/run/netns/${h.ns}`];
    for (const b of options.bindReadOnly ?? []) args.push(`--bind-ro=${b}`);
    const logFd = openSync(join(dir, "console.log"), "a");
    // The shell moves itself into the container's own cgroups, then becomes systemd-nspawn.
    const nspawn = spawn("sh", ["-c", `${enter.join(" && ")} && exec systemd-nspawn "$@"`, "sh", ...args], { stdio: ["ignore", logFd, logFd] });
    closeSync(logFd);
    writeFileSync(join(dir, "nspawn.pid"), String(nspawn.pid));
    const leader = await findLeader(nspawn, join(dir, "console.log"));
    const c = new Container(host, merged, nspawn, leader);
    // PID 1 is there before its bus is (`offline` or no bus yet): ask again until systemd answers.
    let r = await c.execAsync(["systemctl", "is-system-running", "--wait"]);
    for (let i = 0; i < 300 && (r.stdout.trim() === "offline" || /Failed to connect to bus/.test(r.stderr)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      r = await c.execAsync(["systemctl", "is-system-running", "--wait"]);
    }
    const state = r.stdout.trim();
    if (state !== "running" && state !== "degraded") throw new Error(`container ${host}: systemd is ${state || "not answering"} after boot: ${r.stderr.trim()} (console: ${join(dir, "console.log")})`);
    return c;
  }

  /** Runs `argv` inside (every namespace of the container, a clean environment), waiting for it. */
  exec(argv: readonly string[], input?: string): ExecResult {
    const r = spawnSync("nsenter", this.inside(argv), { input, encoding: "utf8", timeout: 120_000 });
    return { status: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? (r.error?.message ?? "") };
  }

  /** `exec` without blocking: for work several containers do at once (boot, dpkg -i on every host). */
  execAsync(argv: readonly string[]): Promise<ExecResult> {
    return new Promise((resolve) => {
      const child = spawn("nsenter", this.inside(argv), { stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      child.on("error", (err) => resolve({ status: -1, stdout, stderr: err.message }));
      child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
    });
  }

  /** Runs a bash script inside (`set -e`); throws with its output when it fails. */
  sh(script: string): string {
    return this.checked(script, this.exec(["bash", "-e", "-c", script]));
  }

  /** `sh` without blocking. */
  async shAsync(script: string): Promise<string> {
    return this.checked(script, await this.execAsync(["bash", "-e", "-c", script]));
  }

  private checked(script: string, r: ExecResult): string {
    if (r.status !== 0) throw new Error(`on ${this.name}: ${script.split("\n")[0]}…: exit ${r.status}: ${(r.stderr || r.stdout).trim().split("\n").slice(-8).join("; ")}`);
    return r.stdout;
  }

  /** nsenter's arguments for `argv` in every namespace of the container, with a clean environment. */
  private inside(argv: readonly string[]): string[] {
    return ["-t", String(this.leader), "-a", "env", "-i", `PATH=${PATH_INSIDE}`, "LANG=C.UTF-8", ...argv];
  }

  /** Powers the container off (SIGTERM to nspawn: systemd inside halts) and waits; SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.nspawn.exitCode !== null || this.nspawn.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.nspawn.once("exit", () => resolve()));
    this.nspawn.kill("SIGTERM");
    const timer = setTimeout(() => this.nspawn.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }
}

/** Stops and removes every container of lab run `runId` (its processes, overlay, cgroups, files). */
export function removeContainers(runId: string): void {
  const dir = join(WORK_DIR, runId);
  if (!existsSync(dir)) return;
  for (const host of readdirSync(dir)) {
    const pidFile = join(dir, host, "nspawn.pid");
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, "utf8"));
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
    const merged = join(dir, host, "merged");
    spawnSync("umount", ["-l", merged]);
    // A cgroup goes only once its last process is reaped: on a loaded machine that is some
    // milliseconds after the SIGKILL, so the removal is tried again for up to 2 s.
    const cgroups = cgroupRoots().map((root) => join(root, cgroupName(runId, host)));
    for (let i = 0; i < 40 && cgroups.some((c) => existsSync(c)); i++) {
      if (i > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      for (const c of cgroups) removeCgroup(c);
    }
    rmSync(`/run/systemd/nspawn/propagate/${host}`, { recursive: true, force: true });
  }
  rmSync(dir, { recursive: true, force: true });
}

/** Run ids with container files left in WORK_DIR (for the lab's clean-up of dead runs). */
export function containerRunIds(): string[] {
  return existsSync(WORK_DIR) ? readdirSync(WORK_DIR).filter((d) => /^[0-9a-f]{4}$/.test(d)) : [];
}

function cgroupName(runId: string, host: string): string {
  return `banyan-lab-${runId}-${host}`;
}

/** Where a process must be placed for nspawn: the v1 name=systemd hierarchy and the v2 one (hybrid), or v2 alone. */
function cgroupRoots(): string[] {
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return ["/sys/fs/cgroup"];
  return ["/sys/fs/cgroup/systemd", "/sys/fs/cgroup/unified"].filter((d) => existsSync(join(d, "cgroup.procs")));
}

/** A cgroup and the ones nspawn and systemd made under it, deepest first (a cgroup goes only when empty). */
function removeCgroup(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir)) {
    const sub = join(dir, e);
    try {
      if (statSync(sub).isDirectory()) removeCgroup(sub);
    } catch {
      // raced with its removal
    }
  }
  try {
    rmdirSync(dir);
  } catch {
    // still has a process (killed, not yet reaped): the next clean-up takes it
  }
}

/** The container's PID 1 as this machine numbers it: a descendant of nspawn whose own PID inside is 1. */
async function findLeader(nspawn: ChildProcess, consoleLog: string): Promise<number> {
  for (let i = 0; i < 200; i++) {
    if (nspawn.exitCode !== null) break;
    // PID 1 inside once it is systemd (before, it is nspawn's own child, about to exec it).
    const found = descendants(nspawn.pid!).find((pid) => readText(`/proc/${pid}/comm`).trim() === "systemd" && /^NSpid:.*\s1$/m.test(readText(`/proc/${pid}/status`)));
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = readText(consoleLog).trim().split("\n").slice(-5).join("; ");
  throw new Error(`systemd-nspawn did not start a container (exit ${nspawn.exitCode ?? "none"}): ${tail}`);
}

function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const task of listDir(`/proc/${p}/task`)) {
      for (const c of readText(`/proc/${p}/task/${task}/children`).split(/\s+/).filter((s) => s !== "")) {
        out.push(Number(c));
        walk(Number(c));
      }
    }
  };
  walk(pid);
  return out;
}

function readText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function osRelease(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readText("/etc/os-release").split("\n")) {
    const m = /^([A-Z_]+)=("?)(.*)\2$/.exec(line.trim());
    if (m !== null) out[m[1]!] = m[3]!;
  }
  return out;
}

/** The Debian mirror this machine's apt uses (deb822 sources or sources.list), else deb.debian.org. */
function aptMirror(): string {
  const files = ["/etc/apt/sources.list", ...listDir("/etc/apt/sources.list.d").filter((f) => f.endsWith(".list") || f.endsWith(".sources")).map((f) => `/etc/apt/sources.list.d/${f}`)];
  for (const f of files) {
    const text = readText(f);
    const uri = /^URIs:\s*(\S+)/m.exec(text)?.[1] ?? /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+\s+main/m.exec(text)?.[1];
    if (uri !== undefined && !uri.includes("security")) return uri;
  }
  return "http://deb.debian.org/debian";
}
