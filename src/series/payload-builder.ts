import type { Payload } from "./payload.js";

/** The columns of one payload as they fill up: ids delta-coded as they are added in ascending order. */
export class PayloadBuilder {
  readonly strings: string[] = [];
  readonly defs: number[] = [];
  private readonly ids: number[] = [];
  private readonly vals: number[] = [];
  private readonly rawIds: number[] = [];
  private readonly rawValues: number[] = [];
  private lastId = -1;
  private lastRaw = -1;

  packed(id: number, packed: number): void {
    this.ids.push(id - this.lastId - 1);
    this.lastId = id;
    this.vals.push(packed);
  }

  raw(id: number, value: number): void {
    this.rawIds.push(id - this.lastRaw - 1);
    this.lastRaw = id;
    this.rawValues.push(value);
  }

  get empty(): boolean {
    return this.ids.length === 0 && this.rawIds.length === 0 && this.defs.length === 0;
  }

  build(gone: readonly number[], live?: number): Payload {
    const p = { strings: this.strings, defs: this.defs, gone, ids: this.ids, vals: this.vals, rawIds: this.rawIds, rawVals: float64Bytes(this.rawValues) };
    return live === undefined ? p : { ...p, live };
  }
}

export function float64Bytes(values: readonly number[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const view = new DataView(out.buffer);
  for (let k = 0; k < values.length; k++) view.setFloat64(k * 8, values[k]!, true);
  return out;
}
