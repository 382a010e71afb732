import type { AppliedFrame, DeltaDecoder } from "../../series/delta-decoder.js";
import type { SeriesDef, SeriesType } from "../../series/series-def.js";

/** An origin's decoded series, read only (the DeltaDecoder's getters). */
export type DecodedSeries = Pick<DeltaDecoder, "size" | "capacity" | "definitionsVersion" | "def" | "value" | "cells">;

/**
 * An origin as outputs read it (the store's OriginView, read only): outputs never import the
 * store, and never change what it holds.
 */
export interface OriginView {
  readonly name: string;
  /** `instance` and `cluster`, as the root labels the origin's series (see OriginIdentity). */
  readonly instance: string;
  readonly cluster: string | null;
  readonly labels: Readonly<Record<string, string>>;
  readonly epoch: bigint;
  /** Sample time of the last frame applied, ms. */
  readonly lastSampleMs: number;
  /** On this root's page now. */
  readonly up: boolean;
  readonly seriesCount: number;
  /** The series' definitions and values; a new object after a new epoch (outputs compare it to see a restart). */
  readonly decoded: DecodedSeries;
  value(id: number): number;
}

/** The root's aggregates as outputs read them (the store's AggregateEngine). */
export interface AggregatesView {
  /** Every aggregate's value now: its record name, its `by` labels, its value. */
  forEachResult(fn: (record: string, labels: readonly (readonly [string, string])[], value: number) => void): void;
}

/** Why an origin's series left this root. */
export type HiddenReason = "down" | "left";

/** The root's own series at one moment (see RootSeries): parallel arrays, `defs[k]` at `values[k]`. */
export interface RootSeriesSnapshot {
  readonly defs: readonly SeriesDef[];
  readonly values: readonly number[];
}

/** What an output may read of the root: the origins it holds, and its families' type and help. */
export interface OutputView {
  origins(): Iterable<OriginView>;
  /** The metric families of the series held, with the first type and help seen. */
  families(): Iterable<{ readonly name: string; readonly type: SeriesType; readonly help: string }>;
  /** The series of one metric name on origins that are up, or null when the view cannot say (then every origin is walked). */
  seriesNamed?(name: string): Iterable<{ readonly origin: OriginView; readonly ids: readonly number[] }>;
  /** The root's own series now (node up and last seen, aggregates, the root's metrics: see RootSeries). */
  rootSeries?(): Promise<RootSeriesSnapshot>;
}

/**
 * Something the root writes onward (remote_write, events, a watch stream): started and stopped with
 * the root and fed, synchronously and in order, what the store applies. The calls come on the
 * ingest path, once per frame: an output copies what it needs (`applied` is scratch space reused by
 * the next frame) and does its I/O later, never inside the call.
 */
export interface RootOutput {
  readonly name: string;
  start(view: OutputView): void;
  stop(): Promise<void>;
  /** A frame of an origin that is up was applied: `applied.changed` ids took new values, sampled at `timeMs`. */
  applied(origin: OriginView, applied: AppliedFrame, timeMs: number): void;
  /** An origin's series became visible (its first keyframe, or it came back up): every value stands at origin.lastSampleMs. */
  shown(origin: OriginView): void;
  /** An origin's series left this root. */
  hidden(origin: OriginView, why: HiddenReason): void;
}
