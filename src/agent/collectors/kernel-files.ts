import { closeSync, openSync, readdirSync, readFileSync, readSync } from "node:fs";

/**
 * Reads of /proc and /sys as cheap as a tick can have them. A kernel file is generated anew by each
 * read from offset 0, so the agent keeps the descriptors of the files it reads every tick open and
 * `pread`s them into one reused buffer: one syscall a file instead of open, fstat, read and close,
 * and no Buffer per read. A file or directory found absent (no InfiniBand, no Lustre, no hwmon on
 * this node) is not asked again for a minute. Other paths (os-release, textfiles: regular files a
 * package may replace, which a kept descriptor would miss) are read whole each time.
 *
 * Bounded: at most MAX_OPEN descriptors and MAX_ABSENT remembered absences; past them, plain reads.
 */
const MAX_OPEN = 256;
const MAX_ABSENT = 4096;
const ABSENT_MS = 60_000;
/** Largest file kept open: bigger ones (a /proc/net/tcp of a busy server) are read whole. */
const MAX_KEPT_BYTES = 1 << 20;

export class KernelFiles {
  private readonly open = new Map<string, number>();
  private readonly absent = new Map<string, number>();
  private buf = Buffer.allocUnsafe(64 * 1024);
  private roots: readonly string[] = [];
  /** Texts read this tick by readShared (a file two collectors parse, /proc/stat): read once. */
  private readonly shared = new Map<string, string | null>();
  private tick = 0;

  /** Directories under which files are kernel-made (the configured proc and sys). */
  setRoots(roots: readonly string[]): void {
    this.roots = roots.map((r) => (r.endsWith("/") ? r : `${r}/`));
  }

  private isKernel(path: string): boolean {
    for (const r of this.roots) if (path.startsWith(r)) return true;
    return false;
  }

  private isAbsent(path: string, nowMs: number): boolean {
    const until = this.absent.get(path);
    if (until === undefined) return false;
    if (nowMs < until) return true;
    this.absent.delete(path);
    return false;
  }

  private markAbsent(path: string, err: unknown, nowMs: number): void {
    const code = (err as NodeJS.ErrnoException).code;
    if ((code === "ENOENT" || code === "ENOTDIR") && this.absent.size < MAX_ABSENT) this.absent.set(path, nowMs + ABSENT_MS);
  }

  /** The file's text (latin1: kernel files are ASCII), or null when it cannot be read. */
  read(path: string, nowMs = Date.now()): string | null {
    if (this.isAbsent(path, nowMs)) return null;
    if (!this.isKernel(path)) return this.readWhole(path, nowMs);
    let fd = this.open.get(path);
    if (fd === undefined) {
      if (this.open.size >= MAX_OPEN) return this.readWhole(path, nowMs);
      try {
        fd = openSync(path, "r");
      } catch (err) {
        this.markAbsent(path, err, nowMs);
        return null;
      }
      this.open.set(path, fd);
    }
    try {
      for (;;) {
        const n = readSync(fd, this.buf, 0, this.buf.length, 0);
        if (n < this.buf.length) return this.buf.toString("latin1", 0, n);
        if (this.buf.length >= MAX_KEPT_BYTES) break;
        this.buf = Buffer.allocUnsafe(this.buf.length * 2);
      }
    } catch (err) {
      // A device gone (its sysfs file with it), or a file that cannot be read at an offset.
      this.forget(path);
      this.markAbsent(path, err, nowMs);
      return null;
    }
    this.forget(path);
    return this.readWhole(path, nowMs);
  }

  private readWhole(path: string, nowMs: number): string | null {
    try {
      return readFileSync(path, "latin1");
    } catch (err) {
      this.markAbsent(path, err, nowMs);
      return null;
    }
  }

  /** A new tick: what readShared read before is read again. */
  newTick(): void {
    this.tick++;
    this.shared.clear();
  }

  /** As read, but once per tick (newTick) for every collector that asks; without ticks, as read. */
  readShared(path: string, nowMs = Date.now()): string | null {
    if (this.tick === 0) return this.read(path, nowMs);
    if (this.shared.has(path)) return this.shared.get(path)!;
    const text = this.read(path, nowMs);
    this.shared.set(path, text);
    return text;
  }

  /** The entries of a directory, or none when it is missing (remembered for a minute). */
  list(path: string, nowMs = Date.now()): string[] {
    if (this.isAbsent(path, nowMs)) return [];
    try {
      return readdirSync(path);
    } catch (err) {
      this.markAbsent(path, err, nowMs);
      return [];
    }
  }

  private forget(path: string): void {
    const fd = this.open.get(path);
    if (fd === undefined) return;
    this.open.delete(path);
    try {
      closeSync(fd);
    } catch {
      // already gone
    }
  }

  /** Descriptors held now (for tests and the agent's own accounting). */
  get openCount(): number {
    return this.open.size;
  }

  close(): void {
    for (const path of [...this.open.keys()]) this.forget(path);
    this.absent.clear();
    this.shared.clear();
  }
}

/** The agent's one cache: collectors are stateless functions of their paths. */
export const kernelFiles = new KernelFiles();
