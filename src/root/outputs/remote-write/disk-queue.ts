import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join, resolve } from "node:path";
import { BanyanError, Code } from "../../../core/errors.js";
import { processRunning } from "../../../core/process-alive.js";
import type { QueuedRequest, RequestQueue } from "./request-queue.js";

/** A record on disk: its header (length, samples, newest time, flags: 1 stale, 2 v2), then the body. */
const HEADER_BYTES = 4 + 4 + 8 + 1;

interface Segment {
  readonly seq: number;
  readonly path: string;
  /** Bytes of the file (records appended so far). */
  size: number;
  /** Samples and records in the file from `start` on (what is still queued in it). */
  samples: number;
  records: number;
  /** Where the first record still queued starts (the read cursor, for the oldest segment). */
  start: number;
}

/**
 * One shard's requests on disk, so that an outage of hours, or a root's restart, loses nothing up
 * to the bound: append-only segment files `shard-<n>-<seq>.seg` of records (length, samples, newest
 * time, stale flag, body), rotated at `segmentBytes`; a segment read to its end is deleted; the
 * read position is kept in `shard-<n>.cursor` after every acknowledgement (a crash between a send
 * and its cursor write sends that request again: the receiver takes the same samples twice, which
 * Prometheus and VictoriaMetrics accept). Only the head is held in memory: the queue's memory is one
 * request whatever the outage. I/O is synchronous and small (one record, tens of KB).
 *
 * A segment that cannot be read as written (removed, truncated, a record whose length runs past the
 * file, a directory gone) is data lost, never a crash: its samples are handed to `onLost` with why,
 * and the queue goes on with the next segment (or a new one).
 */
export class DiskQueue implements RequestQueue {
  private readonly segments: Segment[] = [];
  private tailFd: number | null = null;
  private current: QueuedRequest | null = null;
  private nextSeq = 0;
  private readonly cursorPath: string;

  constructor(
    private readonly dir: string,
    private readonly shard: number,
    private readonly segmentBytes = 8 * 2 ** 20,
    private readonly onLost: (samples: number, why: string) => void = () => {},
  ) {
    mkdirSync(dir, { recursive: true });
    this.cursorPath = join(dir, `shard-${shard}.cursor`);
    this.recover();
  }

  get length(): number {
    return this.segments.reduce((n, s) => n + s.records, 0);
  }

  get bytes(): number {
    return this.segments.reduce((n, s) => n + s.size - s.start, 0);
  }

  get samples(): number {
    return this.segments.reduce((n, s) => n + s.samples, 0);
  }

  push(r: QueuedRequest): void {
    try {
      this.append(r);
    } catch (err) {
      // The directory or the tail file went away: a new segment in a new directory, once.
      this.forgetTail();
      try {
        mkdirSync(this.dir, { recursive: true });
        this.append(r);
      } catch {
        this.onLost(r.samples, `cannot append to ${this.dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    }
  }

  head(): QueuedRequest | null {
    if (this.current !== null) return this.current;
    for (;;) {
      while (this.segments.length > 1 && this.segments[0]!.records === 0) this.removeOldest();
      const seg = this.segments[0];
      if (seg === undefined || seg.records === 0) return null;
      try {
        this.current = readRecord(seg.path, seg.start);
        return this.current;
      } catch (err) {
        // Unreadable from here on: what it still held is lost, the next segment is the head.
        this.onLost(seg.samples, `${seg.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        if (seg === this.segments.at(-1)) this.forgetTail();
        rmSync(seg.path, { force: true });
        this.segments.shift();
        this.saveCursor();
      }
    }
  }

  ack(): void {
    const seg = this.segments[0];
    const r = this.head();
    if (seg === undefined || r === null) return;
    seg.start += HEADER_BYTES + r.body.length;
    seg.samples -= r.samples;
    seg.records--;
    this.current = null;
    if (seg.records === 0 && this.segments.length > 1) this.removeOldest();
    this.saveCursor();
  }

  dropOldest(inFlight: boolean): number {
    // A whole segment: the oldest, or while its head is in flight the next one.
    const k = inFlight ? 1 : 0;
    const seg = this.segments[k];
    if (seg === undefined || seg.records === 0) return 0;
    if (k === 0) this.current = null;
    if (seg === this.segments.at(-1) && this.tailFd !== null) {
      closeSync(this.tailFd);
      this.tailFd = null;
    }
    rmSync(seg.path, { force: true });
    this.segments.splice(k, 1);
    this.saveCursor();
    return seg.samples;
  }

  close(): void {
    if (this.tailFd !== null) closeSync(this.tailFd);
    this.tailFd = null;
  }

  private saveCursor(): void {
    const first = this.segments[0];
    try {
      writeFileSync(this.cursorPath, first === undefined ? `${this.nextSeq} 0\n` : `${first.seq} ${first.start}\n`);
    } catch {
      // The directory is gone: the next push makes it again; a restart meanwhile re-sends at most what this cursor would have skipped.
    }
  }

  private append(r: QueuedRequest): void {
    let tail = this.segments.at(-1);
    if (tail === undefined || this.tailFd === null || tail.size >= this.segmentBytes) tail = this.rotate();
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    header.writeUInt32LE(r.body.length, 0);
    header.writeUInt32LE(r.samples, 4);
    header.writeDoubleLE(r.newestMs, 8);
    header[16] = (r.stale ? 1 : 0) | (r.v2 ? 2 : 0);
    writeSync(this.tailFd!, header);
    writeSync(this.tailFd!, r.body);
    tail.size += HEADER_BYTES + r.body.length;
    tail.samples += r.samples;
    tail.records++;
  }

  /** Closes the tail file; the next push starts a new segment. */
  private forgetTail(): void {
    if (this.tailFd !== null) {
      try {
        closeSync(this.tailFd);
      } catch {
        // already unusable
      }
    }
    this.tailFd = null;
  }

  private rotate(): Segment {
    if (this.tailFd !== null) closeSync(this.tailFd);
    const seq = this.nextSeq++;
    const path = join(this.dir, `shard-${this.shard}-${String(seq).padStart(10, "0")}.seg`);
    this.tailFd = openSync(path, "a");
    const seg: Segment = { seq, path, size: 0, samples: 0, records: 0, start: 0 };
    this.segments.push(seg);
    return seg;
  }

  private removeOldest(): void {
    const seg = this.segments.shift()!;
    rmSync(seg.path, { force: true });
  }

  /** Picks up what an earlier process left: its segments from the saved cursor on (a torn record at a file's end is cut off). */
  private recover(): void {
    const prefix = `shard-${this.shard}-`;
    const files = readdirSync(this.dir)
      .filter((f) => f.startsWith(prefix) && f.endsWith(".seg"))
      .map((f) => ({ f, seq: Number(f.slice(prefix.length, -4)) }))
      .filter((x) => Number.isSafeInteger(x.seq))
      .sort((a, b) => a.seq - b.seq);
    let cursor = { seq: -1, start: 0 };
    if (existsSync(this.cursorPath)) {
      const [seq, start] = readFileSync(this.cursorPath, "utf8").trim().split(" ").map(Number);
      if (Number.isSafeInteger(seq) && Number.isSafeInteger(start)) cursor = { seq: seq!, start: start! };
    }
    for (const { f, seq } of files) {
      const path = join(this.dir, f);
      if (seq < cursor.seq) {
        rmSync(path, { force: true });
        continue;
      }
      const seg: Segment = { seq, path, size: 0, samples: 0, records: 0, start: seq === cursor.seq ? cursor.start : 0 };
      try {
        scanSegment(seg);
      } catch {
        // Gone or unreadable since the listing: nothing to pick up from it.
        seg.records = 0;
      }
      if (seg.records > 0) this.segments.push(seg);
      else rmSync(path, { force: true });
      this.nextSeq = seq + 1;
    }
    // Never reuse a number at or below the cursor's: a segment numbered below it reads as consumed.
    this.nextSeq = Math.max(this.nextSeq, cursor.seq + 1);
  }
}

/** Counts the whole records of a segment from its start; the size stops before a torn one. */
function scanSegment(seg: Segment): void {
  const fd = openSync(seg.path, "r");
  try {
    const total = fstatSync(fd).size;
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    let pos = seg.start;
    while (pos + HEADER_BYTES <= total) {
      readSync(fd, header, 0, HEADER_BYTES, pos);
      const len = header.readUInt32LE(0);
      if (pos + HEADER_BYTES + len > total) break;
      seg.samples += header.readUInt32LE(4);
      seg.records++;
      pos += HEADER_BYTES + len;
    }
    seg.size = pos;
  } finally {
    closeSync(fd);
  }
}

/** The record at `at`; throws when the file no longer holds it whole (removed, truncated, a length past its end). */
function readRecord(path: string, at: number): QueuedRequest {
  const fd = openSync(path, "r");
  try {
    const total = fstatSync(fd).size;
    const header = Buffer.allocUnsafe(HEADER_BYTES);
    if (readSync(fd, header, 0, HEADER_BYTES, at) !== HEADER_BYTES) throw new Error(`truncated: no record at ${at} of ${total} bytes`);
    const len = header.readUInt32LE(0);
    if (at + HEADER_BYTES + len > total) throw new Error(`truncated or damaged: a record of ${len} bytes at ${at} of ${total}`);
    const body = Buffer.allocUnsafe(len);
    if (readSync(fd, body, 0, len, at + HEADER_BYTES) !== len) throw new Error(`truncated at ${at}`);
    return { body, samples: header.readUInt32LE(4), newestMs: header.readDoubleLE(8), stale: (header[16]! & 1) === 1, v2: (header[16]! & 2) === 2 };
  } finally {
    closeSync(fd);
  }
}

/** Queue directories this process holds, with how many outputs use each (a reload's successor takes it over). */
const held = new Map<string, number>();

/**
 * Takes `dir` for this process: a file `lock` with its pid. A directory another live process holds
 * (a second root given the same `queue.dir`, whose segments the two would delete under each other)
 * is refused; a lock left by a process that is gone is taken over. Returns the release.
 */
export function lockQueueDir(dir: string): () => void {
  const key = resolve(dir);
  const path = join(key, "lock");
  if (!held.has(key)) {
    mkdirSync(key, { recursive: true });
    let owner = NaN;
    try {
      owner = Number(readFileSync(path, "utf8").trim());
    } catch {
      // no lock yet
    }
    if (Number.isSafeInteger(owner) && owner !== process.pid && heldByRoot(owner)) {
      throw new BanyanError(Code.InvalidConfig, `remoteWrite[].queue.dir: ${dir} is in use by process ${owner} (another root on this directory?): expected a directory of its own for each root and receiver`);
    }
    writeFileSync(path, `${process.pid}\n`);
  }
  held.set(key, (held.get(key) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (held.get(key) ?? 1) - 1;
    if (n > 0) return void held.set(key, n);
    held.delete(key);
    rmSync(path, { force: true });
  };
}

/** Whether `pid` runs and may be a root (its number reused by some other program after a crash is not). */
function heldByRoot(pid: number): boolean {
  if (!processRunning(pid)) return false;
  try {
    return /node|banyan/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8"));
  } catch {
    return true;
  }
}
