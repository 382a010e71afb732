import { BinaryReader, BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** A request's body (uncompressed) and the samples in it. */
export interface RequestPart {
  readonly body: Uint8Array;
  readonly samples: number;
}

/**
 * A receiver refuses a whole request for one sample it cannot take: Prometheus answers 400 "out of
 * order sample" (or "out of bounds", "duplicate sample for timestamp") and rolls the request back.
 * One node's samples written late by the root it left, after the root it moved to wrote newer ones
 * (both queues drained at once after an outage), took up to 2,000 other samples with them. Those
 * refusals are worth splitting on: the rest of the request is good.
 */
export const SPLIT_WORTHY = /out of order|out of bounds|duplicate sample for timestamp/i;

/**
 * Splits a WriteRequest (1.0: `repeated TimeSeries timeseries = 1`, metadata = 3; 2.0: `repeated
 * string symbols = 4`, `repeated TimeSeries timeseries = 5`) into two halves of its series, each a
 * whole request: 1.0's metadata goes with the first half, 2.0's symbol table with both (the series
 * refer to it). Null when it has one series or fewer (nothing left to split). Cost: one pass over
 * the bytes, the series copied once; only on a refusal.
 */
export function splitRequest(body: Uint8Array, v2: boolean): [RequestPart, RequestPart] | null {
  const seriesField = v2 ? 5 : 1;
  const series: Uint8Array[] = [];
  const shared: [number, Uint8Array][] = [];
  const firstOnly: [number, Uint8Array][] = [];
  const r = new BinaryReader(body);
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (wireType !== WireType.LengthDelimited) {
      r.skip(wireType);
      continue;
    }
    const bytes = r.bytes();
    if (field === seriesField) series.push(bytes);
    else if (v2 && field === 4) shared.push([field, bytes]);
    else firstOnly.push([field, bytes]);
  }
  if (series.length < 2) return null;
  const half = Math.ceil(series.length / 2);
  const part = (from: number, to: number, extra: readonly [number, Uint8Array][]): RequestPart => {
    const w = new BinaryWriter();
    let samples = 0;
    for (const [field, bytes] of [...shared, ...extra]) w.tag(field, WireType.LengthDelimited).bytes(bytes);
    for (let k = from; k < to; k++) {
      w.tag(seriesField, WireType.LengthDelimited).bytes(series[k]!);
      samples += samplesIn(series[k]!);
    }
    return { body: w.finish(), samples };
  };
  return [part(0, half, firstOnly), part(half, series.length, [])];
}

/** Samples in one TimeSeries (field 2 in both protocols). */
function samplesIn(series: Uint8Array): number {
  const r = new BinaryReader(series);
  let n = 0;
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 2 && wireType === WireType.LengthDelimited) n++;
    r.skip(wireType);
  }
  return n;
}
