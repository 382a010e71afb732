import { join } from "node:path";
import { listDir, readText, type Collector } from "./series-writer.js";

/**
 * Lustre jobstats of the servers (what ADMIRE's BarrelEye shows): `job_stats` of every OST
 * (obdfilter.*) and MDT (mdt.*) as per-job bytes and operation counts, under the names of the
 * Lustre exporter: lustre_job_read_bytes_total / lustre_job_write_bytes_total and
 * lustre_job_stats_total{operation}, with component (ost|mdt), target and jobid labels.
 */
export interface JobStat {
  readonly jobid: string;
  /** operation → [samples, sum] */
  readonly ops: Map<string, [number, number]>;
}

/** Parses one job_stats file (YAML-like: "- job_id: …" then "op: { samples: N, unit: U, … sum: S }"). */
export function parseJobStats(text: string): JobStat[] {
  const out: JobStat[] = [];
  let cur: JobStat | null = null;
  for (const line of text.split("\n")) {
    const id = /^-\s+job_id:\s+(.+?)\s*$/.exec(line);
    if (id) {
      cur = { jobid: id[1]!, ops: new Map() };
      out.push(cur);
      continue;
    }
    const op = /^\s+([a-z_]+):\s+\{\s*samples:\s*(\d+)(?:.*?sum:\s*(\d+))?/.exec(line);
    if (op && cur !== null) cur.ops.set(op[1]!, [Number(op[2]), Number(op[3] ?? 0)]);
  }
  return out;
}

export const lustreJobstatsCollector: Collector = {
  name: "lustre_jobstats",
  async collect(w, p) {
    for (const [component, dir] of [["ost", "obdfilter"], ["mdt", "mdt"]] as const) {
      for (const base of [join(p.proc, "fs/lustre", dir), join(p.sys, "kernel/debug/lustre", dir)]) {
        for (const target of listDir(base)) {
          const text = await readText(base, target, "job_stats");
          if (text === null) continue;
          for (const job of parseJobStats(text)) {
            for (const [op, [samples, sum]] of job.ops) {
              const labels = { component, jobid: job.jobid, target };
              if (op === "read_bytes") w.counter("lustre_job_read_bytes_total", labels, sum, "Bytes read by the job on this target.");
              else if (op === "write_bytes") w.counter("lustre_job_write_bytes_total", labels, sum, "Bytes written by the job on this target.");
              w.counter("lustre_job_stats_total", { ...labels, operation: op }, samples, "Operations of the job on this target.");
            }
          }
        }
      }
    }
  },
};
