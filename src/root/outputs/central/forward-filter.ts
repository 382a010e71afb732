import type { SeriesDef } from "../../../series/series-def.js";
import { Selector } from "../../../series/selector.js";
import type { CentralConfig } from "./central-config.js";

/**
 * What of a node's series leaves the cluster: in raw mode, a series matching one of `allow` (or any,
 * when there is none) and none of `deny`, tested against its name, its labels and the root's
 * `instance`. Evaluated once per series when it is defined (the answer is kept per id), never per sample.
 */
export class ForwardFilter {
  private readonly allow: readonly Selector[];
  private readonly deny: readonly Selector[];
  readonly raw: boolean;

  constructor(forward: CentralConfig["forward"]) {
    this.raw = forward.series === "raw";
    this.allow = forward.allow.map((s, k) => Selector.parse(s, `central.forward.allow[${k}]`));
    this.deny = forward.deny.map((s, k) => Selector.parse(s, `central.forward.deny[${k}]`));
  }

  allows(def: SeriesDef, origin: { readonly labels: Readonly<Record<string, string>> }): boolean {
    if (!this.raw) return false;
    const extra = origin.labels;
    if (this.allow.length > 0 && !this.allow.some((s) => s.matches(def.name, def.labels, extra))) return false;
    return !this.deny.some((s) => s.matches(def.name, def.labels, extra));
  }
}
