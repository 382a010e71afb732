import { SeriesType, type SeriesDef } from "./series-def.js";

/**
 * How far a value the root exposes may be from the true value: `max(relative · |v|, absolute)`.
 * Resolved once per series when it is defined, never per sample.
 */
export interface Precision {
  readonly relative: number;
  readonly absolute: number;
}

export interface PrecisionRule extends Precision {
  /** Metric name glob: `*` any run of characters, `?` one; e.g. `node_hwmon_temp_*`. */
  readonly match: string;
}

/** Default for gauges and untyped series: 1 % relative, no absolute floor. */
export const DEFAULT_GAUGE_PRECISION: Precision = Object.freeze({ relative: 0.01, absolute: 0 });
/** Counters are exact unless a rule says otherwise. */
export const EXACT: Precision = Object.freeze({ relative: 0, absolute: 0 });

/**
 * The defaults every agent applies after a site's own rules (the first match wins):
 * - temperatures: 0.5 °C absolute (a sensor's own resolution);
 * - wall-clock times (*_time_seconds: node_time_seconds, node_boot_time_seconds, push_time_seconds,
 *   process_start_time_seconds…; *_timestamp_seconds): 0.5 s absolute — 1 % of a Unix time would be months;
 * - load averages: 0.01 absolute, as /proc prints them;
 * - *_info series: exact (their value is 1; their labels carry the data);
 * - node_exporter's untyped counters (node_vmstat_*, node_netstat_*: /proc/vmstat and
 *   /proc/net/{netstat,snmp,snmp6} are cumulative; node_exporter shows them untyped, and so do we):
 *   exact, like counters — at 1 % a large, slowly growing counter (pgpgout at 2.9M) never moved
 *   and its rate() read 0; likewise node_nf_conntrack_stat_* (cumulative per-CPU counts that
 *   node_exporter shows as gauges);
 * - node_timex_frequency_adjustment_ratio: 1e-9 absolute (it is 1 ± a few ppm: at 1 % it never moved);
 * - node_memory_*_bytes: 0.01 % — dashboards subtract them ("RAM Used" is MemTotal − MemFree −
 *   Cached − Buffers − SReclaimable): at 1 % each, the 24 GB total alone could move the ~800 MB
 *   answer by 240 MB, and it read 832 MB, flat, against node_exporter's 608-812 MB;
 * - node_filesystem_*_bytes: 0.1 % ("Used" is 100 − avail·100/size: at 1 % a nearly empty disk's
 *   used share could be a whole point off);
 * - node_textfile_mtime_seconds: a Unix time, 0.5 s; node_scrape_collector_duration_seconds: 1 ms
 *   absolute (a collector's few µs jitter every tick; one grown slow still shows);
 * - a job's facts and peaks (banyan_job_nodes, banyan_job_cpus_allocated, banyan_job_*_limit_*,
 *   banyan_job_*peak_bytes): exact — they never or seldom move, and its report card compares them
 *   (a peak of 4.29e9 against a limit of 4,294,967,296 bytes would read past it);
 * - everything else: gauges 1 % relative, counters, histograms and summaries exact (by type).
 */
export const DEFAULT_PRECISION_RULES: readonly PrecisionRule[] = Object.freeze([
  { match: "*_temp_celsius", relative: 0, absolute: 0.5 },
  { match: "*_temp_*_celsius", relative: 0, absolute: 0.5 },
  { match: "DCGM_FI_DEV_*_TEMP", relative: 0, absolute: 0.5 },
  { match: "*_time_seconds", relative: 0, absolute: 0.5 },
  { match: "*_timestamp_seconds", relative: 0, absolute: 0.5 },
  { match: "node_load*", relative: 0, absolute: 0.01 },
  { match: "*_info", relative: 0, absolute: 0 },
  { match: "node_vmstat_*", relative: 0, absolute: 0 },
  { match: "node_netstat_*", relative: 0, absolute: 0 },
  { match: "node_nf_conntrack_stat_*", relative: 0, absolute: 0 },
  { match: "node_timex_frequency_adjustment_ratio", relative: 0, absolute: 1e-9 },
  { match: "node_textfile_mtime_seconds", relative: 0, absolute: 0.5 },
  { match: "node_memory_*_bytes", relative: 0.0001, absolute: 0 },
  { match: "node_filesystem_*_bytes", relative: 0.001, absolute: 0 },
  { match: "node_scrape_collector_duration_seconds", relative: 0, absolute: 0.001 },
  { match: "banyan_job_nodes", relative: 0, absolute: 0 },
  { match: "banyan_job_cpus_allocated", relative: 0, absolute: 0 },
  { match: "banyan_job_*_limit_*", relative: 0, absolute: 0 },
  { match: "banyan_job_*peak_bytes", relative: 0, absolute: 0 },
]);

export class PrecisionRules {
  private readonly compiled: { re: RegExp; precision: Precision }[];

  /** Rules are tried in order; the first whose glob matches the metric name wins. */
  constructor(
    rules: readonly PrecisionRule[] = [],
    private readonly gaugeDefault: Precision = DEFAULT_GAUGE_PRECISION,
  ) {
    this.compiled = rules.map((r) => ({
      re: globToRegExp(r.match),
      precision: Object.freeze({ relative: r.relative, absolute: r.absolute }),
    }));
  }

  /**
   * The precision of a series. Histogram and summary parts are always exact: rounding them
   * independently could show a bucket above its `_count`.
   */
  resolve(def: SeriesDef): Precision {
    if (def.type === SeriesType.HistogramPart || def.type === SeriesType.SummaryPart) return EXACT;
    for (const { re, precision } of this.compiled) if (re.test(def.name)) return precision;
    return def.type === SeriesType.Counter ? EXACT : this.gaugeDefault;
  }
}

export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`);
}
