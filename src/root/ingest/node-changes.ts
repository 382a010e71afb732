import { EventSummary, type Logger } from "../../core/logger.js";
import type { OriginState } from "./origin-state.js";

export type NodeChange = "up" | "down" | "left";

/**
 * A node came up at the root, went down (silent), or left (moved to another parent): told to the
 * listeners (events, the status page) at once, and logged as one summary line a second per kind
 * (counts and the first names), never a line per node.
 */
export class NodeChanges {
  private readonly listeners: ((change: NodeChange, st: OriginState) => void)[] = [];
  private readonly summaries: Record<NodeChange, EventSummary>;

  constructor(log: Logger) {
    this.summaries = {
      up: new EventSummary(log, "nodes up"),
      down: new EventSummary(log, "nodes down (silent past deadAfterMs)", "warn"),
      left: new EventSummary(log, "nodes left this root for another parent"),
    };
  }

  listen(listener: (change: NodeChange, st: OriginState) => void): void {
    this.listeners.push(listener);
  }

  note(change: NodeChange, st: OriginState): void {
    this.summaries[change].note(st.name);
    for (const l of this.listeners) l(change, st);
  }

  flush(): void {
    for (const s of Object.values(this.summaries)) s.flush();
  }
}
