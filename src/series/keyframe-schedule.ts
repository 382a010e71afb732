/**
 * When a node sends its keyframes. Each node has a phase in [0, 1) from its name; its periodic
 * keyframe falls at that phase of every `keyframeIntervalMs` of the wall clock, and its first one
 * after a start at that phase of `startSpreadMs` from the start. So N nodes send about
 * N × intervalMs / keyframeIntervalMs keyframes per tick, however they were started: a cluster
 * started by one Slurm job, or every node restarted at once, never sends them in one tick.
 * (Measured before this: 10,000 nodes started together sent 99 MB of keyframes in one second, again
 * every 60 s, and the roots fell behind.) Pure: the caller passes the time.
 */
export interface KeyframeScheduleOptions {
  readonly keyframeIntervalMs: number;
  /** The first keyframe after a start waits for the node's phase within this window; 0: at once. */
  readonly startSpreadMs: number;
}

export class KeyframeSchedule {
  readonly phase: number;
  /** No frame before this time: the node's slot in the start window. */
  readonly firstAtMs: number;
  private readonly offsetMs: number;
  private lastSlot = -Infinity;

  constructor(
    name: string,
    private readonly opts: KeyframeScheduleOptions,
    startMs: number,
  ) {
    this.phase = namePhase(name);
    this.offsetMs = Math.floor(this.phase * opts.keyframeIntervalMs);
    const spread = opts.startSpreadMs;
    // The first instant at or after the start that sits at the node's phase of the spread window.
    this.firstAtMs = spread > 0 ? startMs + mod(Math.floor(this.phase * spread) - startMs, spread) : startMs;
  }

  /** Whether the node may send anything yet (before its first keyframe slot it holds back). */
  started(nowMs: number): boolean {
    return nowMs >= this.firstAtMs;
  }

  /** Whether the tick at `nowMs` starts a keyframe period the node has not sent a keyframe in yet. */
  periodicDue(nowMs: number): boolean {
    return this.slotOf(nowMs) > this.lastSlot;
  }

  /** A keyframe (periodic, first, or asked for) went out at `nowMs`: the next periodic one is in the next period. */
  sent(nowMs: number): void {
    this.lastSlot = Math.max(this.lastSlot, this.slotOf(nowMs));
  }

  private slotOf(nowMs: number): number {
    return Math.floor((nowMs - this.offsetMs) / this.opts.keyframeIntervalMs);
  }
}

/**
 * A name's place in [0, 1): FNV-1a over its UTF-16 code units, then murmur3's finaliser, so that
 * node0001 … node50000 (names differing in a digit or two) land evenly over the interval.
 */
export function namePhase(name: string): number {
  let h = 0x811c9dc5;
  for (let k = 0; k < name.length; k++) {
    h ^= name.charCodeAt(k);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 2 ** 32;
}

/**
 * The default start window of a cluster of `nodes`: about `perSecond` first keyframes a second over
 * the whole cluster, never longer than the keyframe interval (a small cluster starts at once). 250
 * a second: 5,000 nodes × 500 series on one 2-core bench machine took 17 s and marked nodes down at
 * 1,000 a second (each full keyframe ~15 KB, ~1 ms to apply at a root, forwarded by every relay
 * above it); at 50,000 nodes the window is the keyframe interval either way.
 */
export function defaultStartSpreadMs(nodes: number, keyframeIntervalMs: number, perSecond = 250): number {
  const ms = Math.floor((nodes / perSecond) * 1000);
  return ms < 1000 ? 0 : Math.min(keyframeIntervalMs, ms);
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}
