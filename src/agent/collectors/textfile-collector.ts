import { statSync } from "node:fs";
import { join } from "node:path";
import { parseExposition, type ParsedSample } from "../../series/text-parser.js";
import { SeriesType, forwardedType } from "../../series/series-def.js";
import { listDir, readText, type Collector, type SeriesWriter } from "./series-writer.js";

/**
 * node_exporter's textfile collector: every `*.prom` file of `procfs.textfileDirectory` (sites'
 * cron jobs write their own node metrics there), in the text format, with node_exporter 1.5's
 * behaviour: a file that does not parse is left out whole and sets `node_textfile_scrape_error`,
 * the others still count; `node_textfile_mtime_seconds{file}` per file read; a sample may not carry
 * a timestamp. A file is parsed again only when its size or mtime changed. Bounded against whatever
 * a local user can write there: at most MAX_FILES files, MAX_FILE_BYTES each and MAX_TOTAL_BYTES
 * together (what one tick may have to parse: ~50 ms at the bound), MAX_SERIES series.
 */
export const MAX_FILES = 256;
export const MAX_FILE_BYTES = 1024 * 1024;
export const MAX_TOTAL_BYTES = 4 * 1024 * 1024;
export const MAX_SERIES = 20_000;

interface Parsed {
  readonly mtimeMs: number;
  readonly size: number;
  /** null: the file is bad (left out, counted as an error). */
  readonly samples: readonly ParsedSample[] | null;
}

/** Per writer (one per agent), so several agents in one process keep their own files. */
const cacheOf = new WeakMap<SeriesWriter, Map<string, Parsed>>();

function parseFile(path: string, text: string): readonly ParsedSample[] | null {
  const r = parseExposition(text);
  if (r.errors.length > 0 || r.samples.some((s) => s.timestampMs !== null)) return null;
  // node_exporter's HELP for a family the file gave none; an untyped `*_total` travels exact, as a
  // counter; a `job` or `instance` label is kept as `exported_*` (as Prometheus would rename it).
  return r.samples.map((s) => {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(s.labels)) labels[k === "job" || k === "instance" ? `exported_${k}` : k] = v;
    return { ...s, labels, type: forwardedType(s.name, s.type), help: s.help === "" ? `Metric read from ${path}` : s.help };
  });
}

export const textfileCollector: Collector = {
  name: "textfile",
  async collect(w, p) {
    const dir = p.textfileDirectory ?? "";
    let error = 0;
    if (dir !== "") {
      let cache = cacheOf.get(w);
      if (cache === undefined) cacheOf.set(w, (cache = new Map()));
      const names = listDir(dir).filter((n) => n.endsWith(".prom")).sort();
      if (names.length > MAX_FILES) error = 1;
      const kept = new Set<string>();
      let series = 0;
      let bytes = 0;
      for (const name of names.slice(0, MAX_FILES)) {
        const path = join(dir, name);
        kept.add(path);
        let st;
        try {
          st = statSync(path);
        } catch {
          error = 1;
          continue;
        }
        if (!st.isFile() || st.size > MAX_FILE_BYTES || bytes + st.size > MAX_TOTAL_BYTES) {
          error = 1;
          continue;
        }
        bytes += st.size;
        let parsed = cache.get(path);
        if (parsed === undefined || parsed.mtimeMs !== st.mtimeMs || parsed.size !== st.size) {
          const text = await readText(path);
          parsed = { mtimeMs: st.mtimeMs, size: st.size, samples: text === null ? null : parseFile(path, text) };
          cache.set(path, parsed);
        }
        if (parsed.samples === null || series + parsed.samples.length > MAX_SERIES) {
          error = 1;
          continue;
        }
        series += parsed.samples.length;
        for (const s of parsed.samples) w.put(s.name, s.labels, s.value, s.type, s.help);
        w.gauge("node_textfile_mtime_seconds", { file: path }, Math.floor(st.mtimeMs / 1000), "Unixtime mtime of textfiles successfully read.");
      }
      for (const path of cache.keys()) if (!kept.has(path)) cache.delete(path);
    }
    w.put("node_textfile_scrape_error", {}, error, SeriesType.Gauge, "1 if there was an error opening or reading a file, 0 otherwise");
  },
};
