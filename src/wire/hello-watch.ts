/**
 * The streams of a tree port that have not said Hello yet. The connection gate's handshake timeout
 * ends at a connection's first Hello, so without this a connection could open its 1,023 other
 * streams and leave them silent (~7.5 KB each at the root, held forever). Each connection may hold
 * at most `maxPerConnection` silent streams (a child opens one, a would-be child's probe one more),
 * and each is closed `timeoutMs` after it opened. One sweep a second over the silent streams, at
 * most `maxPerConnection` × the port's connections, and no timer per stream.
 */
export class HelloWatch<S> {
  private readonly waiting = new Map<S, { readonly peer: string; readonly sinceMs: number }>();
  private readonly perPeer = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly maxPerConnection: number,
    private readonly timeoutMs: number,
    /** A stream silent past the timeout (it is forgotten here first). */
    private readonly onTimeout: (stream: S) => void,
    sweepMs = 1000,
  ) {
    this.timer = setInterval(() => this.sweep(Date.now()), Math.min(sweepMs, timeoutMs));
    this.timer.unref();
  }

  /** A new stream on connection `peer` (grpc-js' getPeer): false, and not held, when that connection already has its share of silent streams. */
  open(stream: S, peer: string, nowMs: number): boolean {
    const n = this.perPeer.get(peer) ?? 0;
    if (n >= this.maxPerConnection) return false;
    this.perPeer.set(peer, n + 1);
    this.waiting.set(stream, { peer, sinceMs: nowMs });
    return true;
  }

  /** The stream said Hello, or ended: no longer watched. */
  settled(stream: S): void {
    const w = this.waiting.get(stream);
    if (w === undefined) return;
    this.waiting.delete(stream);
    const n = (this.perPeer.get(w.peer) ?? 1) - 1;
    if (n <= 0) this.perPeer.delete(w.peer);
    else this.perPeer.set(w.peer, n);
  }

  /** Streams waiting for their Hello now. */
  get silent(): number {
    return this.waiting.size;
  }

  sweep(nowMs: number): void {
    for (const [stream, w] of this.waiting) {
      if (nowMs - w.sinceMs < this.timeoutMs) continue;
      this.settled(stream);
      this.onTimeout(stream);
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
