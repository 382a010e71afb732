import { FrameKind, type Alive, type Frame } from "../gen/banyan/v1/uplink_pb.js";

/**
 * What waits to go up one link: frames in order, and the latest alive record of each origin.
 * Bounded: past `max` frames the oldest DELTA frames go first (then, with none left, the oldest
 * keyframes), and the origins they came from are reported so they get a keyframe — loss is always
 * repaired, never silently absorbed.
 */
export class FrameQueue {
  private frames: Frame[] = [];
  private readonly alive = new Map<string, Alive>();

  constructor(
    private readonly max: number,
    private readonly onShed: (dropped: { frames: number; origins: string[] }) => void,
  ) {}

  get length(): number {
    return this.frames.length;
  }

  get isEmpty(): boolean {
    return this.frames.length === 0 && this.alive.size === 0;
  }

  push(frames: readonly Frame[], alive: readonly Alive[]): void {
    for (const f of frames) this.frames.push(f);
    for (const a of alive) this.alive.set(a.origin, a);
    this.shedPastMax();
  }

  /** Up to `maxItems` frames and alive records, in order, for one batch. */
  take(maxItems: number): { frames: Frame[]; alive: Alive[] } {
    const frames = this.frames.splice(0, maxItems);
    const alive: Alive[] = [];
    for (const [origin, a] of this.alive) {
      if (frames.length + alive.length >= maxItems) break;
      alive.push(a);
      this.alive.delete(origin);
    }
    return { frames, alive };
  }

  /** Frames sent but not acked go back to the head (duplicates are dropped upstream by sequence); LEAVE frames do not. */
  requeue(frames: readonly Frame[]): void {
    const back = frames.filter((f) => f.kind !== FrameKind.LEAVE);
    if (back.length > 0) this.frames = back.concat(this.frames);
    this.shedPastMax();
  }

  private shedPastMax(): void {
    if (this.frames.length <= this.max) return;
    const excess = this.frames.length - this.max;
    const origins = new Set<string>();
    let n = 0;
    const keep: Frame[] = [];
    for (const f of this.frames) {
      if (n < excess && f.kind === FrameKind.DELTA) {
        n++;
        origins.add(f.origin);
      } else {
        keep.push(f);
      }
    }
    while (keep.length > this.max) {
      origins.add(keep.shift()!.origin);
      n++;
    }
    this.frames = keep;
    this.onShed({ frames: n, origins: [...origins] });
  }
}
