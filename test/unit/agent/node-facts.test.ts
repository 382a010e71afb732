import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { silentLogger } from "../../../src/core/logger.js";
import { SlurmNodeSource } from "../../../src/agent/slurm/slurm-node-source.js";
import { NodeStatusSource, type NodeStatus } from "../../../src/node/node-status-source.js";
import { recorder } from "./sources.test.js";

t.test("node status - banyan_node_away is 1 exactly while the parent is not the planned one", async (t) => {
  let status: NodeStatus = { parent: "r1", planned: "r1", failovers: 0, failoversLastHour: 0 };
  const src = new NodeStatusSource(() => status);
  const target = recorder();
  src.collect(target);
  t.equal(target.values.get("banyan_node_away"), 0);
  t.equal(target.values.get('banyan_node_parent_info{parent="r1",planned="r1"}'), 1);
  status = { parent: "n7", planned: "r1", failovers: 1, failoversLastHour: 1 };
  src.collect(target);
  t.equal(target.values.get("banyan_node_away"), 1, "away on a fallback");
  t.equal(target.values.get('banyan_node_parent_info{parent="n7",planned="r1"}'), 1);
  t.notOk(target.values.has('banyan_node_parent_info{parent="r1",planned="r1"}'), "the old parent's info is gone");
  status = { parent: "r1", planned: "r1", failovers: 1, failoversLastHour: 1 };
  src.collect(target);
  t.equal(target.values.get("banyan_node_away"), 0, "home again");
});

t.test("slurm node - one banyan_node_partition_info per partition Slurm lists, following its changes", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "banyan-scontrol-"));
  const scontrol = join(dir, "scontrol");
  const says = (partitions: string): void => {
    writeFileSync(scontrol, `#!/bin/sh\necho "NodeName=n1 Arch=x86_64 CPUTot=64 RealMemory=256000 State=IDLE Partitions=${partitions} AvailableFeatures=a100 Gres=gpu:4"\n`);
    chmodSync(scontrol, 0o755);
  };
  says("batch,gpu");
  const src = new SlurmNodeSource("n1", scontrol, 60_000, silentLogger());
  t.teardown(() => src.close());
  const target = recorder();
  await src.pollOnce();
  src.collect(target);
  t.equal(target.values.get('banyan_node_partition_info{partition="batch"}'), 1);
  t.equal(target.values.get('banyan_node_partition_info{partition="gpu"}'), 1);
  t.match([...target.values.keys()].find((k) => k.startsWith("banyan_node_slurm_info")), /partitions="batch,gpu"/);
  says("batch");
  await src.pollOnce();
  src.collect(target);
  t.equal(target.values.get('banyan_node_partition_info{partition="batch"}'), 1);
  t.notOk(target.values.has('banyan_node_partition_info{partition="gpu"}'), "a partition the node left is gone");
  says("");
  await src.pollOnce();
  src.collect(target);
  t.same([...target.values.keys()].filter((k) => k.startsWith("banyan_node_partition_info")), [], "no partition, no series");
});

t.test("node status - banyan_node_tick_max_seconds is the longest of each 15 ticks, rounded to 0.1 ms", async (t) => {
  let tick = 0;
  const src = new NodeStatusSource(() => ({ parent: "r1", planned: "r1", failovers: 0, failoversLastHour: 0, lastTickSeconds: tick }));
  const target = recorder();
  const durations = [0.002, 0.00731, 0.001, ...Array.from({ length: 12 }, () => 0.0005)];
  for (const d of durations) {
    t.notOk(target.values.has("banyan_node_tick_max_seconds"), "not before the window is whole");
    tick = d;
    src.collect(target);
  }
  t.equal(target.values.get("banyan_node_tick_max_seconds"), 0.0073, "the window's longest");
  for (let k = 0; k < 15; k++) {
    tick = 0.0004;
    src.collect(target);
  }
  t.equal(target.values.get("banyan_node_tick_max_seconds"), 0.0004, "a new window forgets the old longest");
});
