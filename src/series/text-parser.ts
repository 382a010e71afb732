import { SeriesType, isLabelName, isMetricName } from "./series-def.js";

/**
 * A parser of the Prometheus text exposition format (0.0.4) and of OpenMetrics text: HELP, TYPE,
 * UNIT and EOF lines, label values with escapes, NaN/±Inf, optional timestamps. A bad line is
 * reported with its number and skipped; the good lines are kept.
 */
export interface ParsedSample {
  readonly name: string;
  /** In the order of the exposition. */
  readonly labels: Record<string, string>;
  readonly value: number;
  readonly timestampMs: number | null;
  /** Family the sample belongs to (its TYPE line, or its own name). */
  readonly family: string;
  readonly type: SeriesType;
  readonly help: string;
}

export interface ParseResult {
  readonly samples: ParsedSample[];
  readonly errors: { line: number; message: string }[];
}

const TYPES: Record<string, SeriesType> = {
  counter: SeriesType.Counter,
  gauge: SeriesType.Gauge,
  histogram: SeriesType.HistogramPart,
  gaugehistogram: SeriesType.HistogramPart,
  summary: SeriesType.SummaryPart,
  untyped: SeriesType.Untyped,
  unknown: SeriesType.Untyped,
  info: SeriesType.Gauge,
  stateset: SeriesType.Gauge,
};

const SUFFIXES = ["_bucket", "_count", "_sum", "_total", "_created", "_gcount", "_gsum", "_info"];

export function parseExposition(text: string): ParseResult {
  const families = new Map<string, { type: SeriesType; help: string }>();
  const samples: ParsedSample[] = [];
  const errors: { line: number; message: string }[] = [];
  const lines = text.split("\n");
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.endsWith("\r") ? lines[n]!.slice(0, -1) : lines[n]!;
    if (line.trim() === "") continue;
    try {
      if (line.startsWith("#")) {
        const m = /^#\s+(HELP|TYPE|UNIT)\s+(\S+)(?:\s(.*))?$/.exec(line);
        if (m === null) {
          if (line.trim() === "# EOF") break;
          continue; // a comment
        }
        const [, kind, name, rest = ""] = m;
        if (!isMetricName(name!)) throw new Error(`bad metric name ${JSON.stringify(name)}`);
        const fam = families.get(name!) ?? { type: SeriesType.Untyped, help: "" };
        if (kind === "HELP") fam.help = unescapeHelp(rest);
        else if (kind === "TYPE") {
          const t = TYPES[rest.trim()];
          if (t === undefined) throw new Error(`unknown type ${JSON.stringify(rest.trim())}`);
          fam.type = t;
        }
        families.set(name!, fam);
        continue;
      }
      const s = parseSampleLine(line);
      const fam = familyOf(s.name, families);
      samples.push({ ...s, family: fam.name, type: fam.type, help: fam.help });
    } catch (err) {
      errors.push({ line: n + 1, message: (err as Error).message });
    }
  }
  return { samples, errors };
}

function familyOf(name: string, families: Map<string, { type: SeriesType; help: string }>): { name: string; type: SeriesType; help: string } {
  const own = families.get(name);
  if (own !== undefined) return { name, ...own };
  for (const suffix of SUFFIXES) {
    if (!name.endsWith(suffix)) continue;
    const base = name.slice(0, -suffix.length);
    const f = families.get(base);
    if (f !== undefined) {
      // OpenMetrics names a counter family without _total; the series keeps it.
      return suffix === "_total" && f.type === SeriesType.Counter ? { name, ...f } : { name: base, ...f };
    }
  }
  return { name, type: SeriesType.Untyped, help: "" };
}

function parseSampleLine(line: string): { name: string; labels: Record<string, string>; value: number; timestampMs: number | null } {
  let i = 0;
  while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i]!)) i++;
  const name = line.slice(0, i);
  if (!isMetricName(name)) throw new Error(`bad metric name at column 1`);
  const labels: Record<string, string> = {};
  if (line[i] === "{") {
    i++;
    while (true) {
      while (line[i] === " ") i++;
      if (line[i] === "}") {
        i++;
        break;
      }
      const start = i;
      while (i < line.length && /[a-zA-Z0-9_]/.test(line[i]!)) i++;
      const label = line.slice(start, i);
      if (!isLabelName(label) && label !== "__name__") throw new Error(`bad label name at column ${start + 1}`);
      while (line[i] === " ") i++;
      if (line[i] !== "=") throw new Error(`expected '=' at column ${i + 1}`);
      i++;
      while (line[i] === " ") i++;
      if (line[i] !== '"') throw new Error(`expected '"' at column ${i + 1}`);
      i++;
      let value = "";
      while (true) {
        const c = line[i];
        if (c === undefined) throw new Error("unterminated label value");
        if (c === '"') break;
        if (c === "\\") {
          const e = line[i + 1];
          value += e === "n" ? "\n" : e === "\\" ? "\\" : e === '"' ? '"' : `\\${e ?? ""}`;
          i += 2;
          continue;
        }
        value += c;
        i++;
      }
      i++;
      if (label in labels) throw new Error(`label ${label} twice`);
      labels[label] = value;
      while (line[i] === " ") i++;
      if (line[i] === ",") i++;
      else if (line[i] !== "}") throw new Error(`expected ',' or '}' at column ${i + 1}`);
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length === 0 || rest[0] === "") throw new Error("missing value");
  const value = parseValue(rest[0]!);
  let timestampMs: number | null = null;
  if (rest.length > 1 && !rest[1]!.startsWith("#")) {
    const ts = Number(rest[1]);
    if (!Number.isFinite(ts)) throw new Error(`bad timestamp ${JSON.stringify(rest[1])}`);
    timestampMs = rest[1]!.includes(".") ? ts * 1000 : ts; // OpenMetrics: seconds with a fraction
  }
  return { name, labels, value, timestampMs };
}

function parseValue(s: string): number {
  switch (s) {
    case "NaN":
      return NaN;
    case "+Inf":
    case "Inf":
      return Infinity;
    case "-Inf":
      return -Infinity;
  }
  const v = Number(s);
  if (Number.isNaN(v) || s === "") throw new Error(`bad value ${JSON.stringify(s)}`);
  return v;
}

function unescapeHelp(s: string): string {
  return s.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}
