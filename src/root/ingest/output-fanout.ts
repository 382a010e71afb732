import type { AppliedFrame } from "../../series/delta-decoder.js";
import type { HiddenReason, OriginView, RootOutput } from "../outputs/root-output.js";

/**
 * The store's outputs, fed in order, synchronously, what the store applies (see RootOutput): one
 * call per output and applied frame, and per origin shown or hidden. Costs nothing with no output.
 */
export class OutputFanOut {
  private outputs: readonly RootOutput[] = [];

  /** The outputs fed from now on (the root's list, in its order). */
  set(outputs: readonly RootOutput[]): void {
    this.outputs = outputs;
  }

  applied(origin: OriginView, applied: AppliedFrame, timeMs: number): void {
    for (const o of this.outputs) o.applied(origin, applied, timeMs);
  }

  shown(origin: OriginView): void {
    for (const o of this.outputs) o.shown(origin);
  }

  hidden(origin: OriginView, why: HiddenReason): void {
    for (const o of this.outputs) o.hidden(origin, why);
  }
}
