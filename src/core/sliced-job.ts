/**
 * Work done a slice at a time, so that no piece of it holds the event loop past `sliceMs`: `step`
 * does what fits before the deadline it is given (a `performance.now()` time) and says whether work
 * is left; the next slice runs on a later turn of the loop, after pending I/O.
 */
export class SlicedJob {
  private pending: NodeJS.Immediate | null = null;

  constructor(
    private readonly step: (deadlineMs: number) => boolean,
    private readonly sliceMs: number,
  ) {}

  /** A slice now (the one pending, if any, is taken by it). */
  runNow(): void {
    this.cancel();
    if (this.step(performance.now() + this.sliceMs)) this.pending = setImmediate(() => this.runNow());
  }

  /** A slice on a later turn of the loop, unless one is pending already. */
  runSoon(): void {
    this.pending ??= setImmediate(() => this.runNow());
  }

  cancel(): void {
    if (this.pending !== null) clearImmediate(this.pending);
    this.pending = null;
  }
}
