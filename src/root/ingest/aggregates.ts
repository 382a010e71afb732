import type { AppliedFrame } from "../../series/delta-decoder.js";
import { SeriesType, escapeLabelValue } from "../../series/series-def.js";
import { familyHeader, formatValue, type ExpositionFormat } from "../exposition/exposition-text.js";
import type { OriginState } from "./origin-state.js";
import type { OriginIdentity } from "../exposition/origin-identity.js";

/** A recording-rule-like aggregate: `record` = `expr` of `metric` grouped by the `by` labels. */
export interface AggregateRule {
  readonly record: string;
  readonly expr: "sum" | "avg" | "min" | "max" | "count";
  readonly metric: string;
  /** Labels to keep (`instance` is the origin); empty: one value for all the root's nodes. */
  readonly by: readonly string[];
}

interface Group {
  readonly rule: AggregateRule;
  readonly labelText: string;
  readonly labels: readonly (readonly [string, string])[];
  readonly members: Set<Member>;
  sum: number;
  count: number;
  extreme: number;
  /** min/max: false when the extreme left and must be found again among the members. */
  extremeKnown: boolean;
  /** Incremental sums drift by rounding; the group is summed afresh after this many updates. */
  updates: number;
}

interface Member {
  readonly group: Group;
  /** Contributing value; NaN contributes nothing. */
  value: number;
}

const RESUM_EVERY = 1000;

/**
 * Aggregates maintained as deltas arrive: a changed value moves its group's sum and count by the
 * difference, so a scrape reads them instead of walking every series. Min and max are found again
 * only for a group whose extreme member moved away from it. Origins that are down contribute nothing.
 */
/** The HELP text of an aggregate's family. */
export function aggregateHelp(rule: AggregateRule): string {
  return `${rule.expr} of ${rule.metric} by (${rule.by.join(", ")}), kept by Banyan's root`;
}

export class AggregateEngine {
  private readonly byMetric = new Map<string, AggregateRule[]>();
  private readonly groups = new Map<string, Group>();
  /** origin → series id → its memberships (one per rule on that metric). */
  private readonly members = new Map<OriginState, Map<number, Member[]>>();

  constructor(readonly rules: readonly AggregateRule[]) {
    for (const r of rules) {
      const list = this.byMetric.get(r.metric) ?? [];
      list.push(r);
      this.byMetric.set(r.metric, list);
    }
  }

  get enabled(): boolean {
    return this.rules.length > 0;
  }

  /** Follows one applied frame of an origin that is up. */
  onApplied(origin: OriginState, applied: AppliedFrame, key: boolean): void {
    if (!this.enabled) return;
    if (key) {
      this.join(origin);
      return;
    }
    const mine = this.members.get(origin);
    if (mine === undefined) return;
    for (const id of applied.gone) {
      for (const m of mine.get(id) ?? []) this.leave(m);
      mine.delete(id);
    }
    for (const id of applied.defined) this.enroll(origin, id, mine);
    for (let k = 0; k < applied.changedCount; k++) {
      const id = applied.changed[k]!;
      for (const m of mine.get(id) ?? []) this.update(m, origin.value(id));
    }
  }

  /** (Re)enrolls every series of an origin: after a keyframe, or when it comes back up. */
  join(origin: OriginState): void {
    if (!this.enabled) return;
    this.drop(origin);
    const mine = new Map<number, Member[]>();
    this.members.set(origin, mine);
    const d = origin.decoded;
    for (let id = 0; id < d.capacity; id++) if (d.def(id) !== undefined) this.enroll(origin, id, mine);
  }

  /** Removes an origin's contributions (it went down or was forgotten). */
  drop(origin: OriginState): void {
    const mine = this.members.get(origin);
    if (mine === undefined) return;
    for (const list of mine.values()) for (const m of list) this.leave(m);
    this.members.delete(origin);
  }

  render(format: ExpositionFormat): string {
    const parts: string[] = [];
    for (const rule of this.rules) {
      parts.push(familyHeader(rule.record, SeriesType.Gauge, aggregateHelp(rule), format));
      for (const g of this.groups.values()) if (g.rule === rule) parts.push(`${rule.record}${g.labelText} ${formatValue(this.result(g))}\n`);
    }
    return parts.join("");
  }

  /** Every group's current value (what the central uplink forwards in place of the raw series). */
  forEachResult(fn: (record: string, labels: readonly (readonly [string, string])[], value: number) => void): void {
    for (const g of this.groups.values()) fn(g.rule.record, g.labels, this.result(g));
  }

  private enroll(origin: OriginState, id: number, mine: Map<number, Member[]>): void {
    const def = origin.decoded.def(id)!;
    const rules = this.byMetric.get(def.name);
    if (rules === undefined) return;
    const list: Member[] = [];
    for (const rule of rules) {
      const m: Member = { group: this.groupFor(rule, def.labels, origin), value: NaN };
      m.group.members.add(m);
      this.update(m, origin.value(id));
      list.push(m);
    }
    mine.set(id, list);
  }

  private groupFor(rule: AggregateRule, labels: readonly (readonly [string, string])[], origin: OriginIdentity): Group {
    let text = "";
    const pairs: [string, string][] = [];
    for (const name of rule.by) {
      const v = name === "instance" ? origin.instance : name === "cluster" && origin.cluster !== null ? origin.cluster : (labels.find(([k]) => k === name)?.[1] ?? "");
      text += `${text === "" ? "" : ","}${name}="${escapeLabelValue(v)}"`;
      pairs.push([name, v]);
    }
    const labelText = text === "" ? "" : `{${text}}`;
    const key = `${rule.record}${labelText}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { rule, labelText, labels: pairs, members: new Set(), sum: 0, count: 0, extreme: NaN, extremeKnown: true, updates: 0 };
      this.groups.set(key, g);
    }
    return g;
  }

  private update(m: Member, value: number): void {
    const g = m.group;
    const old = m.value;
    if (old === value || (old !== old && value !== value)) return;
    if (old === old) {
      g.sum -= old;
      g.count--;
    }
    if (value === value) {
      g.sum += value;
      g.count++;
    }
    m.value = value;
    if (g.rule.expr === "min" || g.rule.expr === "max") {
      const better = g.rule.expr === "min" ? value < g.extreme : value > g.extreme;
      if (value === value && (better || g.extreme !== g.extreme)) g.extreme = value;
      else if (old === g.extreme) g.extremeKnown = false;
    }
    if (++g.updates >= RESUM_EVERY) this.resum(g);
  }

  private leave(m: Member): void {
    this.update(m, NaN);
    const g = m.group;
    g.members.delete(m);
    if (g.members.size === 0) this.groups.delete(`${g.rule.record}${g.labelText}`);
  }

  private resum(g: Group): void {
    let sum = 0;
    let count = 0;
    for (const m of g.members) {
      if (m.value === m.value) {
        sum += m.value;
        count++;
      }
    }
    g.sum = sum;
    g.count = count;
    g.updates = 0;
  }

  private result(g: Group): number {
    switch (g.rule.expr) {
      case "sum":
        return g.sum;
      case "count":
        return g.count;
      case "avg":
        return g.count === 0 ? NaN : g.sum / g.count;
      default: {
        if (!g.extremeKnown) {
          let e = NaN;
          for (const m of g.members) {
            if (m.value !== m.value) continue;
            if (e !== e || (g.rule.expr === "min" ? m.value < e : m.value > e)) e = m.value;
          }
          g.extreme = e;
          g.extremeKnown = true;
        }
        return g.extreme;
      }
    }
  }
}
