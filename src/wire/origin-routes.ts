/** Where one origin arrives here, and the newest epoch and sequence of its frames (seq -1: none yet). */
interface Route<S> {
  stream: S;
  epoch: bigint;
  seq: bigint;
}

/**
 * Which child stream each origin arrives on at a relay or root: where a resync for it goes down, and
 * what this node announces as leaving (with its newest epoch and sequence) when it moves. One record
 * per origin, updated in place (no allocation per frame); at most `maxPerStream` origins per stream,
 * and a stream's origins are forgotten with it, so the maps are bounded by the streams the gate admits.
 */
export class OriginRoutes<S> {
  private readonly routes = new Map<string, Route<S>>();
  /** The origins each stream has carried, so a departed stream's routes go with it. */
  private readonly byStream = new Map<S, Set<string>>();

  constructor(readonly maxPerStream: number) {}

  streamOf(origin: string): S | undefined {
    return this.routes.get(origin)?.stream;
  }

  /** `origin` arrives through `stream` from now on; false (nothing changes) when `stream` carries `maxPerStream` others already. */
  take(origin: string, stream: S): boolean {
    let mine = this.byStream.get(stream);
    if (mine === undefined) this.byStream.set(stream, (mine = new Set()));
    if (mine.size >= this.maxPerStream && !mine.has(origin)) return false;
    const r = this.routes.get(origin);
    if (r === undefined) this.routes.set(origin, { stream, epoch: 0n, seq: -1n });
    else r.stream = stream;
    mine.add(origin);
    return true;
  }

  /** Notes a frame of a routed origin, when it is the newest seen. */
  saw(origin: string, epoch: bigint, seq: bigint): void {
    const r = this.routes.get(origin);
    if (r === undefined) return;
    if (r.seq < 0n || epoch > r.epoch || (epoch === r.epoch && seq > r.seq)) {
      r.epoch = epoch;
      r.seq = seq;
    }
  }

  /** The stream is gone: its origins' routes go with it (unless they arrive on another stream by now). */
  forget(stream: S): void {
    for (const o of this.byStream.get(stream) ?? []) if (this.routes.get(o)?.stream === stream) this.routes.delete(o);
    this.byStream.delete(stream);
  }

  /** Every routed origin a frame came from, with its stream and newest epoch and sequence. */
  *framed(): IterableIterator<{ origin: string; stream: S; epoch: bigint; seq: bigint }> {
    for (const [origin, r] of this.routes) if (r.seq >= 0n) yield { origin, stream: r.stream, epoch: r.epoch, seq: r.seq };
  }
}
