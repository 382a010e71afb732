import type { Topology } from "../topology/topology-file.js";
import type { RootStatusReport } from "../root/fleet/root-status.js";

/** One tree as the whole cluster sees it: merged from every root's /api/v1/status. */
export interface ClusterTreeStatus {
  readonly tree: number;
  readonly root: string;
  readonly root_reachable: boolean;
  readonly nodes: number;
  readonly up: number;
  readonly down_nodes: readonly string[];
  /** Nodes whose own root did not answer and that no other root has: not known to be down. */
  readonly unknown_nodes: readonly string[];
  readonly away_nodes: readonly { node: string; parent: string; planned: string }[];
  readonly failovers_1h: number;
  readonly resyncs_1h: number;
}

export interface ClusterStatus {
  readonly trees: readonly ClusterTreeStatus[];
  readonly unreachable: readonly { root: string; error: string }[];
}

/** Asks every root of the topology for its status (each within `timeoutMs`). */
export async function fetchRootStatuses(t: Topology, timeoutMs: number): Promise<Map<string, RootStatusReport | Error>> {
  const out = new Map<string, RootStatusReport | Error>();
  await Promise.all(
    t.roots.map(async (r) => {
      try {
        const res = await fetch(`http://${r.http}/api/v1/status`, { signal: AbortSignal.timeout(timeoutMs) });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
        out.set(r.name, (await res.json()) as RootStatusReport);
      } catch (err) {
        out.set(r.name, new Error(`${r.http}: ${whyUnreachable(err, timeoutMs)}`));
      }
    }),
  );
  return out;
}

/** fetch() says only "fetch failed": the reason an admin can act on is in its cause. */
export function whyUnreachable(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.name === "AbortError") return `no answer within ${timeoutMs} ms (timeout; --timeout-ms to wait longer)`;
  switch (e.cause?.code) {
    case "ECONNREFUSED":
      return "connection refused (no root listening there: not started, or another port)";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `DNS: the host name does not resolve (${e.cause.code})`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `no route to the host (${e.cause.code})`;
    case "ECONNRESET":
      return "connection reset (a firewall, or the root closed it)";
    default:
      return e.cause?.message ?? e.message ?? String(err);
  }
}

/**
 * A node is up when any root has it up: its own root reports it down when it failed over, and the
 * root it went to reports it as a guest. With its own root unreachable, a tree's nodes are up where
 * another root has them, and unknown otherwise (not down: nobody said so).
 */
export function mergeStatuses(t: Topology, reports: ReadonlyMap<string, RootStatusReport | Error>): ClusterStatus {
  const trees: ClusterTreeStatus[] = [];
  const nodesOfTree = new Map<number, string[]>();
  for (const [n, r] of t.nodes) {
    let list = nodesOfTree.get(r.tree);
    if (list === undefined) nodesOfTree.set(r.tree, (list = []));
    list.push(n);
  }
  for (const root of t.roots) {
    for (const tree of root.trees) {
      const all = nodesOfTree.get(tree) ?? [];
      const guests = new Set<string>();
      const away = new Map<string, { node: string; parent: string; planned: string }>();
      let failovers = 0;
      let resyncs = 0;
      let ownDown: string[] | null = null;
      for (const [name, rep] of reports) {
        if (rep instanceof Error) continue;
        const ts = rep.trees.find((x) => x.tree === tree);
        if (ts === undefined) continue;
        for (const g of ts.guest_nodes) guests.add(g);
        for (const a of ts.away_nodes) away.set(a.node, a);
        failovers += ts.failovers_1h;
        resyncs += ts.resyncs_1h;
        if (name === root.name && ts.own) ownDown = [...ts.down_nodes];
      }
      const own = reports.get(root.name);
      const reachable = own !== undefined && !(own instanceof Error);
      // A root that did not answer says nothing of its nodes: those no other root has are unknown, not down.
      const down = reachable ? (ownDown ?? []).filter((n) => !guests.has(n)) : [];
      const unknown = reachable ? [] : all.filter((n) => !guests.has(n));
      trees.push({
        tree,
        root: root.name,
        root_reachable: reachable,
        nodes: all.length,
        up: all.length - down.length - unknown.length,
        down_nodes: down,
        unknown_nodes: unknown,
        away_nodes: [...away.values()].sort((a, b) => (a.node < b.node ? -1 : 1)),
        failovers_1h: failovers,
        resyncs_1h: resyncs,
      });
    }
  }
  trees.sort((a, b) => a.tree - b.tree);
  const unreachable = [...reports].filter(([, r]) => r instanceof Error).map(([root, r]) => ({ root, error: (r as Error).message }));
  return { trees, unreachable };
}

export function formatClusterStatus(s: ClusterStatus): string {
  const header = ["tree", "root", "nodes", "up", "down", "unknown", "away", "failovers 1h", "resyncs 1h"];
  const rows = s.trees.map((t) => [
    String(t.tree),
    t.root_reachable ? t.root : `${t.root} (unreachable)`,
    String(t.nodes),
    String(t.up),
    String(t.down_nodes.length),
    String(t.unknown_nodes.length),
    String(t.away_nodes.length),
    String(t.failovers_1h),
    String(t.resyncs_1h),
  ]);
  const widths = header.map((h, k) => Math.max(h.length, ...rows.map((r) => r[k]!.length)));
  const line = (cells: string[]): string => cells.map((c, k) => c.padEnd(widths[k]!)).join("  ").trimEnd();
  const sum = (f: (t: ClusterTreeStatus) => number): number => s.trees.reduce((a, t) => a + f(t), 0);
  const out = [line(header), ...rows.map(line)];
  const unknown = sum((t) => t.unknown_nodes.length);
  out.push(`total: ${sum((t) => t.up)} of ${sum((t) => t.nodes)} nodes up, ${sum((t) => t.away_nodes.length)} away from their planned parent${unknown > 0 ? `, ${unknown} unknown (their root did not answer)` : ""}`);
  const down = s.trees.flatMap((t) => t.down_nodes);
  if (down.length > 0) out.push(`down: ${down.slice(0, 30).join(" ")}${down.length > 30 ? ` … (${down.length})` : ""}`);
  for (const u of s.unreachable) out.push(`unreachable root ${u.root}: ${u.error}`);
  return out.join("\n") + "\n";
}
