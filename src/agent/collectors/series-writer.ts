import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SeriesType, seriesDef } from "../../series/series-def.js";
import type { SampleTarget } from "../../wire/source.js";

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

/**
 * What the collectors write through: a series is defined once (by name and label values) and then
 * only set by id; a series a tick did not write has vanished (an unplugged CPU, an unmounted
 * filesystem) and ends at the root.
 */
export class SeriesWriter {
  private readonly ids = new Map<string, number>();
  private seen = new Set<string>();
  /** key → the collector that wrote it, so a collector that skips a tick keeps its series. */
  private readonly ownerOf = new Map<string, string>();
  /** The collector writing now. */
  owner = "";

  constructor(private readonly target: SampleTarget) {}

  begin(): void {
    this.seen = new Set();
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
    let id = this.ids.get(key);
    if (id === undefined) {
      id = this.target.define(seriesDef(name, labels, type, { help }));
      this.ids.set(key, id);
    }
    this.seen.add(key);
    this.ownerOf.set(key, this.owner);
    this.target.set(id, value);
  }

  /** Keeps every series of a collector that did not run this tick. */
  keep(owner: string): void {
    for (const [key, o] of this.ownerOf) if (o === owner) this.seen.add(key);
  }

  /** Ends every series not written since `begin`. */
  end(): void {
    for (const [key, id] of this.ids) {
      if (!this.seen.has(key)) {
        this.target.remove(id);
        this.ids.delete(key);
        this.ownerOf.delete(key);
      }
    }
  }
}

/**
 * A file's text, or null when it is missing or unreadable (a collector then writes nothing).
 * Synchronous on purpose: /proc and /sys files are a few hundred bytes served from kernel memory;
 * an async read costs a thread-pool round trip each (measured: 56 ms of CPU per tick for ~350
 * series with fs/promises, almost all of it open/read/fstat/close overhead). Filesystem statfs,
 * which can hang on a dead NFS server, stays asynchronous with a timeout.
 */
export async function readText(...parts: string[]): Promise<string | null> {
  try {
    return readFileSync(join(...parts), "utf8");
  } catch {
    return null;
  }
}

/** The entries of a directory, or none when it is missing (the same synchronous policy as readText). */
export function listDir(...parts: string[]): string[] {
  try {
    return readdirSync(join(...parts));
  } catch {
    return [];
  }
}

/** The lines of a file split on white space, without empty lines. */
export function fields(text: string): string[][] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => l.split(/\s+/));
}
