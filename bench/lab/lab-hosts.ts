import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { processRunning } from "../../src/core/process-alive.js";
import { containerRunIds, removeContainers } from "./lab-containers.js";
import { run } from "./lab-shell.js";

/**
 * Emulated hosts on this machine: each a network namespace with its own address on one bridge,
 * the bridge in a namespace of its own ("sw", the switch), so the machine's own namespace gets
 * nothing. Nothing of the lab can reach out: no namespace has a default route, and while the lab
 * lives the machine's own namespace has a blackhole route for the lab's subnet (a client run there
 * by mistake towards a lab address is refused, never sent out of the machine).
 *
 * Everything a lab creates carries its run id: namespaces `bnl-<id>-<host>`, switch ports
 * `b<id><k>`, `/etc/netns/bnl-<id>-*` (its hosts files), the blackhole route, the containers booted
 * on its hosts (lab-containers.ts), and a state file in STATE_DIR naming the process that owns it. `destroy()` removes all of it; `removeStaleLabs()`
 * removes what labs whose owner died left behind. Linux, root (CAP_NET_ADMIN, CAP_SYS_ADMIN).
 *
 * Cost (this 2-core VM): 32 hosts in ~0.4 s, 200 in ~2.5 s; destroyed in ~0.5 s.
 */
export interface LabHost {
  readonly name: string;
  /** Its network namespace (`ip netns exec <ns> …`). */
  readonly ns: string;
  /** Its port on the switch (in the switch's namespace): link down there is a silent power loss. */
  readonly port: string;
  readonly ip: string;
}

/** What a lab is, as written to its state file and handed to a process that uses it. */
export interface LabState {
  readonly runId: string;
  /** The owner: while it lives, the lab is in use. */
  readonly pid: number;
  /** Second octet of the lab's 10.x.0.0/16. */
  readonly octet: number;
  readonly switchNs: string;
  readonly hosts: readonly LabHost[];
}

export const STATE_DIR = "/run/banyan-lab";
const PREFIX = "bnl-";

/** Why this machine cannot run a lab, or null when it can. */
export function labUnavailable(): string | null {
  if (process.platform !== "linux") return "emulated hosts need Linux network namespaces";
  if (process.getuid?.() !== 0) return "emulated hosts need root (network namespaces, a bridge, nftables)";
  if (spawnSync("ip", ["-V"]).status !== 0) return "emulated hosts need iproute2's ip (Debian: iproute2)";
  if (spawnSync("nft", ["--version"]).status !== 0) return "emulated hosts need nftables' nft for their faults (Debian: nftables)";
  return null;
}

export class Lab {
  private readonly byName: Map<string, LabHost>;

  private constructor(readonly state: LabState) {
    this.byName = new Map(state.hosts.map((h) => [h.name, h]));
  }

  /** A lab another process created (its state, as `state` gave it). */
  static attach(state: LabState): Lab {
    return new Lab(state);
  }

  /**
   * Creates one host per name on a fresh switch, with a hosts file naming every host. The lab's
   * subnet is the first 10.x.0.0/16 (x from 77) that no route of this machine uses.
   */
  static create(names: readonly string[]): Lab {
    const why = labUnavailable();
    if (why !== null) throw new Error(why);
    if (names.length > 60_000) throw new Error(`a lab of ${names.length} hosts: at most 60,000 (one /16)`);
    const runId = randomBytes(2).toString("hex");
    const octet = freeOctet();
    const switchNs = `${PREFIX}${runId}-sw`;
    const hosts = names.map((name, k): LabHost => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(name)) throw new Error(`lab host name ${JSON.stringify(name)}: letters, digits, '.', '_', '-' (at most 41)`);
      return { name, ns: `${PREFIX}${runId}-${name}`, port: `b${runId}${k}`, ip: `10.${octet}.${1 + Math.floor(k / 250)}.${1 + (k % 250)}` };
    });
    const lab = new Lab({ runId, pid: process.pid, octet, switchNs, hosts });
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(join(STATE_DIR, `${runId}.json`), JSON.stringify(lab.state));
    try {
      run("ip", ["route", "add", "blackhole", lab.subnet]);
      run("ip", ["-batch", "-"], [switchNs, ...hosts.map((h) => h.ns)].map((ns) => `netns add ${ns}`).join("\n") + "\n");
      const sw = ["link add br0 type bridge", "link set br0 up"];
      for (const h of hosts) sw.push(`link add ${h.port} type veth peer name eth0 netns ${h.ns}`, `link set ${h.port} master br0`, `link set ${h.port} up`);
      run("ip", ["-n", switchNs, "-batch", "-"], sw.join("\n") + "\n");
      const hostsFile = ["127.0.0.1 localhost", ...hosts.map((h) => `${h.ip} ${h.name}`)].join("\n") + "\n";
      for (const h of hosts) {
        run("ip", ["-n", h.ns, "-batch", "-"], `link set lo up\naddr add ${h.ip}/16 dev eth0\nlink set eth0 up\n`);
        // `ip netns exec` binds /etc/netns/<ns>/hosts over /etc/hosts: the hosts know each other by name.
        mkdirSync(`/etc/netns/${h.ns}`, { recursive: true });
        writeFileSync(`/etc/netns/${h.ns}/hosts`, hostsFile);
      }
    } catch (err) {
      lab.destroy();
      throw err;
    }
    return lab;
  }

  get runId(): string {
    return this.state.runId;
  }

  get subnet(): string {
    return `10.${this.state.octet}.0.0/16`;
  }

  get hosts(): readonly LabHost[] {
    return this.state.hosts;
  }

  host(name: string): LabHost {
    const h = this.byName.get(name);
    if (h === undefined) throw new Error(`no lab host ${name}`);
    return h;
  }

  /** The command line that runs `argv` on host `name`. */
  command(name: string, argv: readonly string[]): [string, string[]] {
    return ["ip", ["netns", "exec", this.host(name).ns, ...argv]];
  }

  /** Bytes each host sent and received, as its switch port counts them (frames with TCP/IP and TLS: what the network carries). */
  wireBytes(): Map<string, { sent: number; received: number }> {
    const links = JSON.parse(run("ip", ["-n", this.state.switchNs, "-s", "-j", "link", "show"])) as { ifname: string; stats64?: { rx: { bytes: number }; tx: { bytes: number } } }[];
    const byPort = new Map(links.map((l) => [l.ifname, l.stats64]));
    const out = new Map<string, { sent: number; received: number }>();
    for (const h of this.state.hosts) {
      const s = byPort.get(h.port);
      // The port receives what the host sends.
      if (s !== undefined) out.set(h.name, { sent: s.rx.bytes, received: s.tx.bytes });
    }
    return out;
  }

  /** Removes everything the lab created (its hosts' processes must be gone, or they keep their namespace alive unnamed). */
  destroy(): void {
    removeLab(this.state);
  }
}

/** Removes every lab whose owner is no longer running (a bench killed with SIGKILL, a crash); the run ids removed. */
export function removeStaleLabs(): string[] {
  const removed: string[] = [];
  const states = existsSync(STATE_DIR) ? readdirSync(STATE_DIR).filter((f) => f.endsWith(".json")) : [];
  const known = new Set<string>();
  for (const f of states) {
    let state: LabState;
    try {
      state = JSON.parse(readFileSync(join(STATE_DIR, f), "utf8")) as LabState;
    } catch {
      rmSync(join(STATE_DIR, f), { force: true });
      continue;
    }
    known.add(state.runId);
    if (processRunning(state.pid)) continue;
    removeLab(state);
    removed.push(state.runId);
  }
  // Namespaces of a lab whose state file is gone too (nobody owns them).
  const orphans = new Map<string, string[]>();
  for (const ns of netnsList()) {
    const m = /^bnl-([0-9a-f]{4})-/.exec(ns);
    if (m === null || known.has(m[1]!)) continue;
    if (!orphans.has(m[1]!)) orphans.set(m[1]!, []);
    orphans.get(m[1]!)!.push(ns);
  }
  for (const [runId, list] of orphans) {
    for (const ns of list) deleteNetns(ns);
    removeContainers(runId);
    removed.push(runId);
  }
  // Containers' files of a lab that is gone.
  for (const runId of containerRunIds()) {
    if (known.has(runId) || orphans.has(runId)) continue;
    removeContainers(runId);
    removed.push(runId);
  }
  return removed;
}

function removeLab(state: LabState): void {
  // Processes still inside a host would keep its namespace (and the addresses) alive after `netns del`.
  for (const ns of [...state.hosts.map((h) => h.ns), state.switchNs]) {
    killInside(ns);
    deleteNetns(ns);
  }
  removeContainers(state.runId);
  spawnSync("ip", ["route", "del", "blackhole", `10.${state.octet}.0.0/16`]);
  rmSync(join(STATE_DIR, `${state.runId}.json`), { force: true });
}

function deleteNetns(ns: string): void {
  spawnSync("ip", ["netns", "del", ns]);
  rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
}

function killInside(ns: string): void {
  const r = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" });
  for (const pid of (r.stdout ?? "").split(/\s+/).filter((p) => p !== "")) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // gone already
    }
  }
}

function netnsList(): string[] {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  return (r.stdout ?? "").split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(PREFIX));
}


/** The first 10.x (x from 77) that no route of this machine's namespace covers. */
function freeOctet(): number {
  const routes = run("ip", ["-4", "route", "show", "table", "all"]);
  for (let x = 77; x < 127; x++) if (!routes.includes(`10.${x}.`)) return x;
  throw new Error("no free 10.x.0.0/16 for a lab (10.77-126 are routed here)");
}
