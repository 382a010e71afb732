import { SeriesType, seriesDef } from "../../series/series-def.js";
import type { SampleTarget } from "../../node/source.js";
import { kernelFiles } from "./kernel-files.js";

/** Where a collector reads: the proc and sys trees and the root of the mounted filesystems. */
export interface HostPaths {
  readonly proc: string;
  readonly sys: string;
  /** Prefix of mount points when stat-ing filesystems ("" on the host itself). */
  readonly rootfs: string;
  /** Regexps of mount points and filesystem types left out (node_exporter's flags of the same names). */
  readonly mountPointsExclude?: string;
  readonly fsTypesExclude?: string;
  /** Regexp of network devices left out of netdev. */
  readonly netdevExclude?: string;
  /** Directory of `*.prom` files for the textfile collector ("" or absent: none). */
  readonly textfileDirectory?: string;
}

/** Cadence of what changes rarely (system and interface properties): every 15 ticks. */
export const RARELY = 15;

/** A collector of one node_exporter family group; reads files, never spawns a process. */
export interface Collector {
  readonly name: string;
  /** Run every this many ticks (default 1): for what changes rarely (uname, os, interface properties). */
  readonly everyTicks?: number;
  collect(w: SeriesWriter, paths: HostPaths): Promise<void>;
}

/** One series a collector wrote: its id at the target, the tick it was last written, its writer. */
interface Written {
  readonly key: string;
  readonly id: number;
  tick: number;
  owner: string;
}

/**
 * What the collectors write through: a series is defined once (by name and label values) and then
 * only set by id; a series a tick did not write has vanished (an unplugged CPU, an unmounted
 * filesystem) and ends at the root. Per tick it allocates nothing but the lookup key: each series
 * carries the tick it was last written, and each collector the list of its series (a collector
 * that skips a tick marks them written).
 */
export class SeriesWriter {
  private readonly written = new Map<string, Written>();
  private readonly byOwner = new Map<string, Written[]>();
  private tick = 0;
  /** Series written this tick (when it equals the map's size, none vanished). */
  private count = 0;
  /** The collector writing now. */
  owner = "";

  constructor(private readonly target: SampleTarget) {}

  begin(): void {
    this.tick++;
    this.count = 0;
  }

  gauge(name: string, labels: Record<string, string>, value: number, help: string): void {
    this.put(name, labels, value, SeriesType.Gauge, help);
  }

  counter(name: string, labels: Record<string, string>, value: number, help: string): void {
    this.put(name, labels, value, SeriesType.Counter, help);
  }

  untyped(name: string, labels: Record<string, string>, value: number, help: string): void {
    this.put(name, labels, value, SeriesType.Untyped, help);
  }

  put(name: string, labels: Record<string, string>, value: number, type: SeriesType, help: string): void {
    let key = name;
    for (const k in labels) key += "\u0000" + k + "=" + labels[k];
    let s = this.written.get(key);
    if (s === undefined) {
      s = { key, id: this.target.define(seriesDef(name, labels, type, { help })), tick: 0, owner: this.owner };
      this.written.set(key, s);
      this.listOf(this.owner).push(s);
    } else if (s.owner !== this.owner) {
      this.unlist(s);
      s.owner = this.owner;
      this.listOf(this.owner).push(s);
    }
    if (s.tick !== this.tick) {
      s.tick = this.tick;
      this.count++;
    }
    this.target.set(s.id, value);
  }

  /** Keeps every series of a collector that did not run this tick. */
  keep(owner: string): void {
    for (const s of this.byOwner.get(owner) ?? []) {
      if (s.tick === this.tick) continue;
      s.tick = this.tick;
      this.count++;
    }
  }

  /** Ends every series not written since `begin`. */
  end(): void {
    if (this.count === this.written.size) return;
    for (const s of this.written.values()) {
      if (s.tick === this.tick) continue;
      this.target.remove(s.id);
      this.written.delete(s.key);
      this.unlist(s);
    }
  }

  private listOf(owner: string): Written[] {
    let list = this.byOwner.get(owner);
    if (list === undefined) this.byOwner.set(owner, (list = []));
    return list;
  }

  private unlist(s: Written): void {
    const list = this.byOwner.get(s.owner);
    const at = list?.indexOf(s) ?? -1;
    if (at >= 0) list!.splice(at, 1);
  }
}

/**
 * A file's text, or null when it is missing or unreadable (a collector then writes nothing).
 * Synchronous on purpose: /proc and /sys files are a few hundred bytes served from kernel memory;
 * an async read costs a thread-pool round trip each (measured: 56 ms of CPU per tick for ~350
 * series with fs/promises, almost all of it open/read/fstat/close overhead). Kernel files are read
 * through kernelFiles (kept descriptors, absences remembered a minute). Filesystem statfs, which
 * can hang on a dead NFS server, stays asynchronous with a timeout.
 */
export async function readText(...parts: string[]): Promise<string | null> {
  // parts.join, not path.join: the kernel takes a doubled slash, and a tick makes ~100 of these.
  return kernelFiles.read(parts.join("/"));
}

/** The entries of a directory, or none when it is missing (remembered a minute, as for readText). */
export function listDir(...parts: string[]): string[] {
  return kernelFiles.list(parts.join("/"));
}

/** The lines of a file split on white space, without empty lines. */
export function fields(text: string): string[][] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => l.split(/\s+/));
}
