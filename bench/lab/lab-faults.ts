import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { delayerBinary } from "./delayer.js";
import type { Lab } from "./lab-hosts.js";
import { run } from "./lab-shell.js";

/**
 * The faults a real network has, applied to a lab's hosts at its switch:
 * - silence: the host's switch port down (a dead NIC, a pulled cable, power lost): nothing more
 *   leaves or reaches it, no RST, no FIN; its processes may also be frozen (SIGSTOP) by the caller;
 * - partition: a group of hosts (a rack) cut off from every other host, still reaching each other
 *   (nftables bridge rules in the switch; 5 ms to apply, silent);
 * - loss: N % of the packets the given hosts send dropped as they enter the switch (nftables
 *   numgen): a link between two of them loses N % each way;
 * - rate: a host's link capped both ways (tc tbf on its port and on its own eth0);
 * - delay: every packet arriving at the given hosts held D ms (iptables NFQUEUE and the lab's
 *   delayer in each host: on arrival, since delaying on the way out collapses TCP), so each hop
 *   of a path is D ms longer one way.
 * Every rule lives in the switch's namespace or the host's, and goes with the lab.
 */
export class LabFaults {
  private cut: string[] = [];
  private lossy: string[] = [];
  private lossPercent = 0;
  private readonly delayers = new Map<string, ChildProcess>();

  constructor(private readonly lab: Lab) {}

  silence(host: string): void {
    run("ip", ["-n", this.lab.state.switchNs, "link", "set", this.lab.host(host).port, "down"]);
  }

  restore(host: string): void {
    run("ip", ["-n", this.lab.state.switchNs, "link", "set", this.lab.host(host).port, "up"]);
  }

  /** Cuts `hosts` off from every other host of the lab (they still reach each other). */
  partition(hosts: readonly string[]): void {
    this.cut = hosts.map((h) => this.lab.host(h).port);
    this.apply();
  }

  heal(): void {
    this.cut = [];
    this.apply();
  }

  /** Drops `percent` % of the packets `hosts` send (0 stops it): N % each way on a link between two of them. */
  loss(hosts: readonly string[], percent: number): void {
    if (!(percent >= 0 && percent <= 100)) throw new Error(`loss ${percent} %: expected 0-100`);
    this.lossy = percent > 0 ? hosts.map((h) => this.lab.host(h).port) : [];
    this.lossPercent = Math.round(percent);
    this.apply();
  }

  /** Caps `host`'s link to `mbit` Mbit/s each way (null lifts it). */
  rate(host: string, mbit: number | null): void {
    const h = this.lab.host(host);
    for (const [ns, dev] of [[this.lab.state.switchNs, h.port], [h.ns, "eth0"]] as const) {
      spawnSync("tc", ["-n", ns, "qdisc", "del", "dev", dev, "root"]);
      if (mbit !== null) run("tc", ["-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", `${mbit}mbit`, "burst", "32kb", "latency", "50ms"]);
    }
  }

  /** Holds every packet arriving at `hosts` `ms` ms (0 lifts it from every host). */
  async delay(hosts: readonly string[], ms: number): Promise<void> {
    for (const [host, p] of this.delayers) {
      p.kill("SIGKILL");
      spawnSync("ip", ["netns", "exec", this.lab.host(host).ns, "iptables", "-t", "mangle", "-F", "PREROUTING"]);
    }
    this.delayers.clear();
    if (ms <= 0) return;
    const bin = delayerBinary();
    for (const host of hosts) {
      const ns = this.lab.host(host).ns;
      const p = spawn("ip", ["netns", "exec", ns, bin, "0", String(Math.round(ms))], { stdio: ["ignore", "ignore", "inherit"] });
      this.delayers.set(host, p);
      // --queue-bypass: until the delayer binds its queue (or if it dies), packets pass undelayed.
      run("ip", ["netns", "exec", ns, "iptables", "-t", "mangle", "-A", "PREROUTING", "-i", "eth0", "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass"]);
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  /** The switch's whole rule set, written at once (nft -f replaces the table atomically). */
  private apply(): void {
    const set = (name: string, ports: readonly string[]): string => `  set ${name} { type ifname; ${ports.length > 0 ? `elements = { ${ports.map((p) => `"${p}"`).join(", ")} }` : ""} }`;
    const rules = [
      "table bridge banyan_lab {",
      set("cut", this.cut),
      set("lossy", this.lossy),
      // A chain may not be named `fwd` (a keyword).
      "  chain forwarding {",
      "    type filter hook forward priority 0; policy accept;",
      "    iifname @cut oifname != @cut drop",
      "    iifname != @cut oifname @cut drop",
      // Once per packet, at the port it enters the switch by: a link between two lossy hosts loses
      // N % each way (rolled at both ends, a packet would cross two rolls: ~2N %).
      ...(this.lossPercent > 0 ? [`    iifname @lossy numgen random mod 100 < ${this.lossPercent} drop`] : []),
      "  }",
      "}",
    ];
    // Deleting first makes the file replace the table whole (creating it empty first makes the delete legal).
    run("ip", ["netns", "exec", this.lab.state.switchNs, "nft", "-f", "-"], `table bridge banyan_lab {}\ndelete table bridge banyan_lab\n${rules.join("\n")}\n`);
  }
}
