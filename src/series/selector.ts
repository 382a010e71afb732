import { BanyanError, Code } from "../core/errors.js";
import type { LabelPairs } from "./series-def.js";

/** One label matcher of a PromQL vector selector: `=`, `!=`, `=~`, `!~`. */
export interface LabelMatcher {
  readonly label: string;
  readonly op: "=" | "!=" | "=~" | "!~";
  readonly value: string;
}

/**
 * A PromQL vector selector (`node_load1{partition="gpu",mode!~"idle|iowait"}`, `{__name__=~"DCGM_.*"}`),
 * compiled once: `matches` is a few string compares and anchored regexp tests per series, done when a
 * series is defined (a filter result is cached per series id), never per sample.
 *
 * Hand-written rather than taken from @prometheus-io/lezer-promql: only the selector subset is needed,
 * and lezer's error recovery gives no message to put in a config error or a 400.
 */
export class Selector {
  private readonly tests: readonly ((name: string, labels: LabelPairs, extra: Readonly<Record<string, string>>) => boolean)[];

  private constructor(
    readonly text: string,
    readonly matchers: readonly LabelMatcher[],
  ) {
    this.tests = matchers.map((m) => {
      const get = (name: string, labels: LabelPairs, extra: Readonly<Record<string, string>>): string =>
        m.label === "__name__" ? name : (extra[m.label] ?? labels.find(([k]) => k === m.label)?.[1] ?? "");
      switch (m.op) {
        case "=":
          return (n, l, x) => get(n, l, x) === m.value;
        case "!=":
          return (n, l, x) => get(n, l, x) !== m.value;
        default: {
          const re = new RegExp(`^(?:${m.value})$`);
          return m.op === "=~" ? (n, l, x) => re.test(get(n, l, x)) : (n, l, x) => !re.test(get(n, l, x));
        }
      }
    });
  }

  /** The metric name when the selector names exactly one (`name{…}` or `{__name__="name"}`), else null. */
  get metricName(): string | null {
    return this.matchers.find((m) => m.label === "__name__" && m.op === "=")?.value ?? null;
  }

  /** Whether a series matches; `extra` holds labels the root adds (`instance`, `cluster`), which win over the series' own. */
  matches(name: string, labels: LabelPairs, extra: Readonly<Record<string, string>> = NO_LABELS): boolean {
    for (const t of this.tests) if (!t(name, labels, extra)) return false;
    return true;
  }

  /** The selector, or what is wrong with it ("expected … at character N"). */
  static tryParse(text: string): Selector | string {
    const p = new SelectorParser(text);
    try {
      const matchers = p.selector();
      // PromQL's own rule: a selector must not match every series (`{}`, `{a=~".*"}`).
      if (matchers.every(matchesEmpty)) throw p.fail("a selector that does not match the empty label set (a metric name, or a matcher with a non-empty value)");
      return new Selector(text, matchers);
    } catch (err) {
      if (err instanceof SelectorSyntax) return err.message;
      throw err;
    }
  }

  /** Parses a selector; a BanyanError (InvalidConfig) names `where`, the text and what was expected. */
  static parse(text: string, where: string): Selector {
    const s = Selector.tryParse(text);
    if (typeof s === "string") throw new BanyanError(Code.InvalidConfig, `${where}: ${JSON.stringify(text.slice(0, 200))}: ${s}`);
    return s;
  }
}

/** Whether a matcher lets a series without the label through (PromQL refuses a selector made only of those). */
function matchesEmpty(m: LabelMatcher): boolean {
  switch (m.op) {
    case "=":
      return m.value === "";
    case "!=":
      return m.value !== "";
    case "=~":
      return new RegExp(`^(?:${m.value})$`).test("");
    default:
      return !new RegExp(`^(?:${m.value})$`).test("");
  }
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});
const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL = /[a-zA-Z_][a-zA-Z0-9_]*/y;
const OP = /=~|!~|!=|=/y;
const SPACE = /\s*/y;
const ESCAPES: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", '"': '"', "'": "'" };

/** What the parser found wrong; tryParse turns it into its answer. */
class SelectorSyntax extends Error {}

class SelectorParser {
  private at = 0;

  constructor(private readonly text: string) {}

  selector(): LabelMatcher[] {
    if (this.text.length > 4096) throw this.fail("a selector of at most 4096 characters");
    const out: LabelMatcher[] = [];
    this.space();
    const name = this.token(NAME);
    if (name !== null) out.push({ label: "__name__", op: "=", value: name });
    this.space();
    if (this.text[this.at] === "{") {
      this.at++;
      for (;;) {
        this.space();
        if (this.text[this.at] === "}") break;
        const quoted = this.text[this.at] === '"';
        const label = quoted ? this.string() : this.token(LABEL);
        if (label === null) throw this.fail("a label name");
        this.space();
        // Prometheus 3 allows the metric name quoted inside the braces: {"metric.name", a="b"}.
        if (quoted && (this.text[this.at] === "," || this.text[this.at] === "}")) {
          out.push({ label: "__name__", op: "=", value: label });
          if (this.text[this.at] === ",") this.at++;
          continue;
        }
        const op = this.token(OP) as LabelMatcher["op"] | null;
        if (op === null) throw this.fail("one of = != =~ !~");
        this.space();
        const value = this.string();
        if (op === "=~" || op === "!~") {
          try {
            new RegExp(`^(?:${value})$`);
          } catch {
            throw this.fail(`a valid regular expression for ${label}`);
          }
        }
        out.push({ label, op, value });
        this.space();
        if (this.text[this.at] === ",") this.at++;
        else if (this.text[this.at] !== "}") throw this.fail("',' or '}'");
      }
      this.at++;
    } else if (name === null) {
      throw this.fail("a metric name or '{'");
    }
    this.space();
    if (this.at !== this.text.length) throw this.fail("the end of the selector");
    return out;
  }

  private string(): string {
    const q = this.text[this.at];
    if (q !== '"' && q !== "'") throw this.fail("a quoted string");
    let s = "";
    for (let k = this.at + 1; k < this.text.length; k++) {
      const c = this.text[k]!;
      if (c === q) {
        this.at = k + 1;
        return s;
      }
      if (c === "\\") {
        const e = ESCAPES[this.text[++k] ?? ""];
        if (e === undefined) throw this.fail("a known escape (\\n \\t \\r \\\\ \\\" \\')");
        s += e;
      } else s += c;
    }
    throw this.fail("a closing quote");
  }

  private token(re: RegExp): string | null {
    re.lastIndex = this.at;
    const m = re.exec(this.text);
    if (m === null || m[0] === "") return null;
    this.at = re.lastIndex;
    return m[0];
  }

  private space(): void {
    SPACE.lastIndex = this.at;
    SPACE.exec(this.text);
    this.at = SPACE.lastIndex;
  }

  fail(expected: string): SelectorSyntax {
    return new SelectorSyntax(`expected ${expected} at character ${this.at + 1}`);
  }
}
