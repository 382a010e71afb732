import type { BenchCluster } from "./bench-cluster.js";

export interface FailoverFigures {
  killed: number;
  detection_ms: number;
  recovery_ms: number;
  nodes_lost: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Kills k real relays at once; detection, time until every other node is fresh again, nodes lost. */
export async function failoverScenario(cluster: BenchCluster, killRelays: number, recovery: { t_ms: number[]; fresh_fraction: number[] }, killed: Set<string>, say: (l: string) => void): Promise<FailoverFigures | null> {
  const plan = cluster.plan;
  const candidates = plan.relays.filter((r) => plan.topology.nodes.get(r)!.parent.startsWith("sim"));
  const step = Math.max(1, Math.floor(candidates.length / Math.max(1, killRelays)));
  const victims = candidates.filter((_, k) => k % step === 0).slice(0, killRelays);
  if (victims.length === 0) {
    say("failover: no relay below another relay to kill at this size");
    return null;
  }
  for (const v of victims) killed.add(v);
  const killedAt = Date.now();
  await Promise.all([...new Set(victims.map((v) => cluster.relaysOf.get(v)!))].map((w) => w.ask({ type: "kill", names: victims.filter((v) => cluster.relaysOf.get(v) === w) }, "killed")));
  const others = [...plan.topology.nodes.keys()].filter((n) => !victims.includes(n));
  let freshAt = NaN;
  let fresh = 0;
  while (Date.now() - killedAt < 60_000) {
    const reports = (await cluster.nodes()).flat();
    const ok = new Set(reports.filter((n) => n.up && n.last_sample_ms > killedAt).map((n) => n.node));
    fresh = others.filter((n) => ok.has(n)).length;
    recovery.t_ms.push(Date.now() - killedAt);
    recovery.fresh_fraction.push(fresh / others.length);
    if (fresh === others.length) {
      freshAt = Date.now();
      break;
    }
    await sleep(100);
  }
  const detections = [...(await cluster.workerStats()).map((w) => w.failoverAtMs), (await cluster.simStats()).failoverAtMs].filter((t) => t >= killedAt);
  const result = { killed: victims.length, detection_ms: detections.length > 0 ? Math.min(...detections) - killedAt : NaN, recovery_ms: freshAt - killedAt, nodes_lost: others.length - fresh };
  say(`failover: killed ${victims.join(" ")}; detected after ${result.detection_ms} ms, every other node fresh after ${result.recovery_ms} ms, ${result.nodes_lost} lost`);
  return result;
}
