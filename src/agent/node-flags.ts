/**
 * The Node flags an agent's process starts with: the package's launcher (`/usr/bin/banyan agent`,
 * the tarball's `bin/banyan agent`, so the systemd unit too), `banyan job start` and the agent
 * benches pass them. Start the agent some other way (`node dist/src/cli/main.js agent`) and pass
 * them yourself.
 *
 * `--single-threaded-gc`: V8 hands each collection of the agent's small heap to helper threads,
 * which wake on other cores — on a compute node, cores the job runs on — about once a second. With
 * one GC thread the collection runs in the tick that caused it, on the core the agent already
 * holds, at the same CPU (the agent takes a core ~30 % less often: `bench/agent-noise.ts
 * --versus ""`; figures in the README's "Jitter"). V8 reads GC flags only as it starts (set from inside the
 * process, by `v8.setFlagsFromString`, they crash it at the next collection), hence a flag here and
 * not a setting.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ["--single-threaded-gc"];
