import { doubledLength, grownTo } from "../../core/typed-arrays.js";

/**
 * One origin's series prefixes (`name{labels,instance="…"} `, UTF-8) in one buffer, by series id:
 * a start and a length per id instead of a Buffer object per series (at a root of millions of series
 * that was a million small objects for every major collection to mark, and ~80 bytes of heap each).
 * A series that goes leaves its bytes behind until half the buffer is such dead space; then the live
 * prefixes are copied into a buffer of their own size, so churning definitions cannot grow it.
 */
export class PrefixArena {
  private bytes = Buffer.alloc(0);
  /** Bytes used from the start of `bytes` (live and dead); bytes of live prefixes. */
  private fill = 0;
  private live = 0;
  private start = new Uint32Array(0);
  /** 0 where an id has no prefix (a prefix is never empty). */
  private len = new Uint32Array(0);

  /** The id's prefix is now `text`. */
  set(id: number, text: string): void {
    this.drop(id);
    const n = Buffer.byteLength(text, "utf8");
    if (this.fill + n > this.bytes.length) this.makeRoom(n);
    this.bytes.write(text, this.fill, "utf8");
    this.start = grownTo(this.start, id + 1);
    this.len = grownTo(this.len, id + 1);
    this.start[id] = this.fill;
    this.len[id] = n;
    this.fill += n;
    this.live += n;
  }

  /** The id has no prefix any more (its series went). */
  drop(id: number): void {
    const n = id < this.len.length ? this.len[id]! : 0;
    if (n === 0) return;
    this.live -= n;
    this.len[id] = 0;
  }

  /** Byte length of the id's prefix (0: none). */
  length(id: number): number {
    return id < this.len.length ? this.len[id]! : 0;
  }

  /** Copies the id's prefix into `out` at `at`; returns its length. */
  copy(id: number, out: Buffer, at: number): number {
    const s = this.start[id]!;
    return this.bytes.copy(out, at, s, s + this.len[id]!);
  }

  /** No prefixes; the buffer is kept for the ones that follow (a keyframe restates them all). */
  clear(): void {
    this.fill = 0;
    this.live = 0;
    this.len.fill(0);
  }

  /** No prefixes and no memory (the origin is forgotten). */
  release(): void {
    this.clear();
    this.bytes = Buffer.alloc(0);
    this.start = new Uint32Array(0);
    this.len = new Uint32Array(0);
  }

  /** Gives back what growing left over (after a keyframe restated every prefix). */
  trim(): void {
    if (this.bytes.length > this.fill + (this.fill >>> 2) + 256) this.compact(this.fill);
  }

  /** Bytes held (live, dead and free), for tests and accounting. */
  get capacity(): number {
    return this.bytes.length;
  }

  private makeRoom(n: number): void {
    // Half of what is used dead: copy the live ones out; else grow.
    if (this.fill - this.live >= this.live) this.compact(doubledLength(0, this.live + n, 256));
    else this.grow(doubledLength(this.bytes.length, this.fill + n, 256));
  }

  /** Into a buffer of `size` bytes (at least the live bytes): every live prefix, in id order. */
  private compact(size: number): void {
    const next = Buffer.allocUnsafe(size);
    let o = 0;
    for (let id = 0; id < this.len.length; id++) {
      const n = this.len[id]!;
      if (n === 0) continue;
      this.bytes.copy(next, o, this.start[id]!, this.start[id]! + n);
      this.start[id] = o;
      o += n;
    }
    this.fill = o;
    this.bytes = next;
  }

  /** Into a buffer of `size` bytes, the used bytes as they are. */
  private grow(size: number): void {
    const next = Buffer.allocUnsafe(size);
    this.bytes.copy(next, 0, 0, this.fill);
    this.bytes = next;
  }
}
