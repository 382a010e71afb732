#!/usr/bin/env node
// A toy "scheduler" on Banyan's watch API: it watches every running job's GPU utilisation at a root
// (the average over the job's GPUs, evaluated at the root as values arrive) and says which jobs
// leave their GPUs idle, and when they get back to work. A real scheduler would act instead:
// requeue, notify the user, shrink the allocation.
//
//   node examples/idle-gpus.mjs --root 127.0.0.1:7473 [--below 10] [--for-s 60]
//
// --root is the root's watch.grpcListen address. Uses the gRPC form (banyan.v1.Watch); the same
// stream is at http://<root>/api/v1/watch?match[]=banyan_job_gpu_utilization_percent&agg=avg&by=job_id,user
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { WatchRequestSchema } from "../dist/src/gen/banyan/v1/watch_pb.js";
import { watchServiceDefinition } from "../dist/src/root/outputs/watch/watch-grpc.js";

const { values } = parseArgs({ options: { root: { type: "string" }, below: { type: "string", default: "10" }, "for-s": { type: "string", default: "60" } } });
if (values.root === undefined) {
  console.error("usage: node examples/idle-gpus.mjs --root <host:port of the root's watch.grpcListen> [--below 10] [--for-s 60]");
  process.exit(2);
}
const below = Number(values.below);
const forMs = Number(values["for-s"]) * 1000;

const Watch = grpc.makeGenericClientConstructor(watchServiceDefinition, "Watch");
const client = new Watch(values.root, grpc.credentials.createInsecure());
const call = client.Watch(create(WatchRequestSchema, { match: ["banyan_job_gpu_utilization_percent"], agg: "avg", by: ["job_id", "user"] }));

/** job → since when it has been under the threshold (null: busy), and whether we said so. */
const jobs = new Map();
const check = (now) => {
  for (const [job, s] of jobs) {
    if (s.idleSince !== null && !s.reported && now - s.idleSince >= forMs) {
      s.reported = true;
      console.log(`idle: job ${job} (user ${s.user}) has used ${s.value.toFixed(0)} % of its GPUs for ${((now - s.idleSince) / 1000).toFixed(0)} s`);
    }
  }
};
call.on("data", (update) => {
  const now = Date.now();
  for (const sample of update.samples) {
    const job = sample.labels.job_id;
    if (sample.gone) {
      jobs.delete(job);
      continue;
    }
    const s = jobs.get(job) ?? { idleSince: null, reported: false, user: sample.labels.user, value: 0 };
    s.value = sample.value;
    if (sample.value < below) s.idleSince ??= now;
    else {
      if (s.reported) console.log(`busy again: job ${job} at ${sample.value.toFixed(0)} %`);
      s.idleSince = null;
      s.reported = false;
    }
    jobs.set(job, s);
  }
  check(now);
});
setInterval(() => check(Date.now()), 1000).unref();
call.on("error", (err) => {
  console.error(`watch ended: ${err.details ?? err.message}`);
  process.exit(1);
});
