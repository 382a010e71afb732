// A child's link as a parent knows it, and when another process may take a node's name.

/** One child's stream, known after its Hello. */
export interface ChildLink {
  readonly node: string;
  readonly tree: number;
  readonly epoch: bigint;
  readonly connectedAtMs: number;
  /** The child's process (its Hello's instance; 0 when it did not say). */
  readonly instance: bigint;
}

/** A link as the server keeps it: when its latest message came, and its usual gap between messages. */
export interface HeldLink extends ChildLink {
  lastMessageMs: number;
  gapMs: number;
}

/** A stream is alive while its latest message is at most this many of its usual gaps old (and 2 s). */
const ALIVE_GAPS = 3;
const ALIVE_MIN_MS = 2000;

/** A message came on a link: its time, and its usual gap (a moving average) between messages. */
export function heard(link: HeldLink, now: number): void {
  const gap = now - link.lastMessageMs;
  link.gapMs = link.gapMs === 0 ? gap : 0.75 * link.gapMs + 0.25 * gap;
  link.lastMessageMs = now;
}

/**
 * True when a Hello of `instance` comes from another process than the one holding `held`, and that
 * one is alive (a message within a few of its usual gaps). A process that does not say its instance
 * (0: an older Banyan) and a silent stream (its host rebooted; the connection is half-open) give way.
 */
export function isOtherLiveProcess(held: HeldLink, instance: bigint, now: number): boolean {
  if (instance === 0n || held.instance === 0n || instance === held.instance) return false;
  return now - held.lastMessageMs <= Math.max(ALIVE_MIN_MS, ALIVE_GAPS * held.gapMs);
}
