/** A node's failovers: since start, and in the last hour (the node reports both as series of its own). */
export class FailoverHistory {
  private total = 0;
  /** Times of the failovers of the last hour, oldest first: at most one per connect attempt. */
  private times: number[] = [];

  note(nowMs = Date.now()): void {
    this.total++;
    this.times.push(nowMs);
  }

  get count(): number {
    return this.total;
  }

  lastHour(nowMs = Date.now()): number {
    const since = nowMs - 3_600_000;
    let k = 0;
    while (k < this.times.length && this.times[k]! < since) k++;
    if (k > 0) this.times = this.times.slice(k);
    return this.times.length;
  }
}
