import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Topology } from "../../src/topology/topology-file.js";
import { renderTopology } from "../../src/tools/topology/index.js";
import { which } from "../prometheus-baseline.js";

/**
 * A real Prometheus on the bench's own lab host (`ops`), scraping every root every second with the
 * config `banyan topology render --format prometheus` gives an admin: what a site's Prometheus
 * would store through a fault, read back as raw samples. Cost: one Prometheus process (~0.1 core
 * at 200 × 100).
 */
export class LabPrometheus {
  private constructor(
    private readonly proc: ChildProcess,
    private readonly port: number,
    private readonly dir: string,
  ) {}

  /** Starts it and waits until every root is scraped (null when Prometheus is not installed). */
  static async start(topology: Topology, port: number): Promise<LabPrometheus | null> {
    let bin: string;
    try {
      bin = which("prometheus");
    } catch {
      return null;
    }
    const dir = mkdtempSync(join(tmpdir(), "banyan-lab-prometheus-"));
    writeFileSync(join(dir, "prometheus.yml"), renderTopology(topology, "prometheus", { scrapeInterval: "1s", jobName: "banyan" }));
    const proc = spawn(bin, [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: "ignore" });
    const p = new LabPrometheus(proc, port, dir);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && !((await p.scalar('count(up{job="banyan"} == 1)')) >= topology.roots.length)) await new Promise((r) => setTimeout(r, 500));
    // Past its first scrapes (every series created): a fault is not timed against its start-up.
    await new Promise((r) => setTimeout(r, 3000));
    return p;
  }

  /**
   * The longest time without a sample, per node, of a series each of `nodes` has exactly once, over
   * [fromMs, toMs]: a failover's or a move's hole as the store sees it (≈ one scrape interval when
   * there is none).
   */
  async longestGaps(nodes: readonly string[], fromMs: number, toMs: number): Promise<Map<string, number>> {
    const gaps = new Map<string, number>();
    if (nodes.length === 0) return gaps;
    const first = JSON.stringify(nodes[0]);
    // A metric of the node's own (node_*, not the roots' banyan_node_*) it has once, asked for every node.
    const r = await this.query(`topk(1, count by (__name__) ({instance=${first}, __name__=~"node_.+"}) == 1)`, toMs);
    const name = (r[0]?.metric as { __name__?: string } | undefined)?.__name__;
    if (name === undefined) return gaps;
    const windowS = Math.ceil((toMs - fromMs) / 1000);
    const series = await this.query(`${name}{instance=~"${nodes.map((n) => n.replace(/[.]/g, "\\\\.")).join("|")}"}[${windowS}s]`, toMs);
    for (const s of series) {
      const times = (s.values ?? []).map(([ts]) => ts * 1000).filter((t) => t >= fromMs);
      let gap = times.length === 0 ? toMs - fromMs : Math.max(times[0]! - fromMs, toMs - times.at(-1)!);
      for (let k = 1; k < times.length; k++) gap = Math.max(gap, times[k]! - times[k - 1]!);
      const node = (s.metric as { instance: string }).instance;
      gaps.set(node, Math.max(gaps.get(node) ?? 0, gap));
    }
    for (const n of nodes) if (!gaps.has(n)) gaps.set(n, toMs - fromMs);
    return gaps;
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill("SIGTERM");
      await once(this.proc, "exit");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async scalar(expr: string): Promise<number> {
    return Number((await this.query(expr))[0]?.value?.[1] ?? NaN);
  }

  private async query(expr: string, atMs?: number): Promise<{ metric: object; value?: [number, string]; values?: [number, string][] }[]> {
    const at = atMs === undefined ? "" : `&time=${atMs / 1000}`;
    const res = await fetch(`http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(expr)}${at}`, { signal: AbortSignal.timeout(10_000) })
      .then((r) => r.json() as Promise<{ data?: { result: { metric: object; value?: [number, string]; values?: [number, string][] }[] } }>)
      .catch(() => ({ data: undefined }));
    return res.data?.result ?? [];
  }
}
