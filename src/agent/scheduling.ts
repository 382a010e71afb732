import { readdirSync } from "node:fs";
import { setPriority } from "node:os";

/** Where and how the agent runs on the node's cores (agent.yaml: cpuAffinity, nice, schedPolicy). */
export interface Scheduling {
  /** CPUs the agent may run on, as a Linux CPU list ("0", "0-1,64"); absent: wherever the OS puts it. */
  readonly cpuAffinity?: string | undefined;
  /** Nice value (-20..19) of every thread of the agent; absent: left as started. */
  readonly nice?: number | undefined;
  /** other: the default time-sharing; batch: never preempts a running task for wake-up latency; idle: runs only when a core has nothing else. */
  readonly schedPolicy: "other" | "batch" | "idle";
}

/** Most CPUs a list may name (the mask passed to the kernel is this many bits). */
const MAX_CPUS = 4096;

/** The CPUs of a Linux CPU list ("0-3,8,10-11"), or an error naming the part that is not one. */
export function parseCpuList(text: string): number[] {
  const cpus = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (m === null) throw new Error(`"${part}" is not a CPU or a range of them (a list is like 0-3,8)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi >= MAX_CPUS) throw new Error(`"${part}": CPUs are 0 to ${MAX_CPUS - 1}, a range low to high`);
    for (let c = lo; c <= hi; c++) cpus.add(c);
  }
  return [...cpus].sort((a, b) => a - b);
}

const POLICY = { other: 0, batch: 3, idle: 5 } as const;

interface Libc {
  setaffinity(tid: number, size: number, mask: Uint8Array): number;
  setscheduler(tid: number, policy: number, param: Int32Array): number;
  errno(): number;
}

async function bindLibc(): Promise<Libc> {
  const koffi = (await import("koffi")).default;
  const libc = koffi.load("libc.so.6");
  const setaffinity = libc.func("int sched_setaffinity(int pid, size_t cpusetsize, const uint8_t *mask)");
  const setscheduler = libc.func("int sched_setscheduler(int pid, int policy, const int *param)");
  return {
    setaffinity: (tid, size, mask) => setaffinity(tid, size, mask) as number,
    setscheduler: (tid, policy, param) => setscheduler(tid, policy, param) as number,
    errno: () => koffi.errno(),
  };
}

/**
 * Applies the settings to every thread of this process (affinity, policy and nice are per thread
 * on Linux; threads started later inherit them from the thread that starts them). What the kernel
 * refuses (a nice below 0 without CAP_SYS_NICE, CPUs that are not online) comes back as a sentence
 * per refusal; the agent runs on as it was.
 */
export async function applyScheduling(s: Scheduling): Promise<string[]> {
  const problems: string[] = [];
  const tids = readdirSync("/proc/self/task").map(Number);
  const needLibc = s.cpuAffinity !== undefined || s.schedPolicy !== "other";
  if (needLibc && process.platform !== "linux") return ["cpuAffinity and schedPolicy need Linux: left as they are"];
  const libc = needLibc ? await bindLibc() : null;
  if (libc !== null && s.cpuAffinity !== undefined) {
    const cpus = parseCpuList(s.cpuAffinity);
    const mask = new Uint8Array(MAX_CPUS / 8);
    for (const c of cpus) mask[c >> 3]! |= 1 << (c & 7);
    for (const tid of tids) {
      if (libc.setaffinity(tid, mask.length, mask) !== 0) {
        problems.push(`cpuAffinity ${s.cpuAffinity}: sched_setaffinity refused (errno ${libc.errno()}: are those CPUs online?)`);
        break;
      }
    }
  }
  if (libc !== null && s.schedPolicy !== "other") {
    for (const tid of tids) {
      if (libc.setscheduler(tid, POLICY[s.schedPolicy], new Int32Array(1)) !== 0) {
        problems.push(`schedPolicy ${s.schedPolicy}: sched_setscheduler refused (errno ${libc.errno()})`);
        break;
      }
    }
  }
  if (s.nice !== undefined && s.schedPolicy !== "idle") {
    try {
      // setpriority(PRIO_PROCESS, tid) sets that one thread on Linux.
      for (const tid of tids) setPriority(tid, s.nice);
    } catch (err) {
      problems.push(`nice ${s.nice}: ${(err as Error).message} (below 0 needs root or CAP_SYS_NICE)`);
    }
  }
  return problems;
}
