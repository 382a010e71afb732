import { Command, Option } from "commander";
import { BanyanError, Code } from "../core/errors.js";
import { exitOnError } from "./cli-errors.js";
import { subcommand } from "./subcommand.js";
import { readUsage, usageRows, type GroupBy, type UsageRow } from "../tools/usage/usage-report.js";

const COLUMNS: readonly (keyof UsageRow)[] = ["key", "jobs", "node_hours", "cpu_hours", "cpu_alloc_hours", "cpu_efficiency_percent", "gpu_hours", "gpu_utilization_percent", "idle_gpu_hours", "memory_peak_bytes", "memory_peak_of_allocated_percent", "io_read_bytes", "io_written_bytes", "energy_kwh", "unaccounted_jobs"];

function cell(k: keyof UsageRow, v: UsageRow[keyof UsageRow]): string {
  if (v === null) return "-";
  if (typeof v === "string") return v;
  if (k === "jobs" || k === "unaccounted_jobs") return String(v);
  if (/bytes/.test(k)) return v >= 1e12 ? `${(v / 1e12).toFixed(1)} TB` : v >= 1e9 ? `${(v / 1e9).toFixed(1)} GB` : `${(v / 1e6).toFixed(1)} MB`;
  return k === "energy_kwh" ? v.toFixed(3) : v.toFixed(1);
}

/** `2026-11-30` (a whole day, UTC) or any time Date.parse takes; `end` moves a bare day to its end. */
function timeOf(text: string, flag: string, end: boolean): number {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(text);
  const ms = Date.parse(day ? `${text}T00:00:00Z` : text);
  if (!Number.isFinite(ms)) throw new BanyanError(Code.InvalidConfig, `${flag} ${JSON.stringify(text)}: expected a day (2026-11-30) or an RFC 3339 time`);
  return day && end ? ms + 86_400_000 : ms;
}

export function reportCommand(): Command {
  const usage = subcommand("usage")
    .description("use of the cluster per user, account, partition or day, from the epilogs' job reports and the roots' job-end logs")
    .argument("<paths...>", "directories of job reports (<id>.<node>.json; e.g. /var/lib/banyan/jobs gathered from the nodes) and roots' job-end logs (events.jobLog)")
    .requiredOption("--from <day>", "required: first day (UTC, 2026-11-01) or time counted: jobs that ended from then")
    .requiredOption("--to <day>", "required: last day (UTC, included) or time")
    .addOption(new Option("--by <key>", "one row per").choices(["user", "account", "partition", "day"]).default("user"))
    .addOption(new Option("--format <format>", "output").choices(["table", "csv", "json"]).default("table"))
    .addHelpText(
      "after",
      `
Columns: jobs; node-hours; CPU-hours used and allocated (CPUs × duration: what sreport's job
SizesByAccount counts); CPU efficiency (used over allocated, for jobs whose
nodes said their CPUs: SLURM_JOB_CPUS_PER_NODE or scontrol); GPU-hours and mean GPU utilisation
(weighted by GPU-hours); idle GPU-hours (GPUs allocated and never busy); the largest memory peak, and the mean of each job's peak over its
allocation (its cgroup's memory limit, where Slurm set one); I/O read and written; energy (kWh
attributed to the jobs on their nodes, where they measure it); unknown: jobs whose
use is unknown (a node found no cgroup for them: shown as "-", left out of the sums and efficiencies,
never counted as 0). A job with epilog reports
is counted from them, else from a root's log; a job in two roots' logs once.

Examples:
  banyan report usage /var/lib/banyan/jobs --from 2026-11-01 --to 2026-11-30 --by account
  banyan report usage /var/log/banyan/jobs-r1.jsonl /var/log/banyan/jobs-r2.jsonl --from 2026-11-29 --to 2026-11-29 --by day --format csv`,
    )
    .action((paths: string[], flags: { from: string; to: string; by: GroupBy; format: "table" | "csv" | "json" }) => {
      try {
        const fromMs = timeOf(flags.from, "--from", false);
        const toMs = timeOf(flags.to, "--to", true);
        if (toMs <= fromMs) throw new BanyanError(Code.InvalidConfig, `--to ${flags.to} is not after --from ${flags.from}`);
        const { jobs, skipped } = readUsage(paths);
        const rows = usageRows(jobs, flags.by, fromMs, toMs);
        if (flags.format === "json") process.stdout.write(JSON.stringify({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), by: flags.by, rows }, null, 2) + "\n");
        else if (flags.format === "csv") process.stdout.write([COLUMNS.map((c) => (c === "key" ? flags.by : c)).join(","), ...rows.map((r) => COLUMNS.map((c) => (r[c] === null ? "" : typeof r[c] === "string" ? JSON.stringify(r[c]) : String(r[c]))).join(","))].join("\n") + "\n");
        else {
          const head = [flags.by, "jobs", "node-h", "cpu-h", "cpu-alloc-h", "cpu-eff %", "gpu-h", "gpu-util %", "idle-gpu-h", "mem peak", "mem/alloc %", "read", "written", "kWh", "unknown"];
          const body = rows.map((r) => COLUMNS.map((c) => cell(c, r[c])));
          const widths = head.map((h, k) => Math.max(h.length, ...body.map((b) => b[k]!.length)));
          const line = (cells: readonly string[]): string => cells.map((c, k) => (k === 0 ? c.padEnd(widths[k]!) : c.padStart(widths[k]!))).join("  ");
          process.stdout.write([line(head), ...body.map(line)].join("\n") + "\n");
        }
        process.stderr.write(`${jobs.length} jobs read, ${rows.reduce((n, r) => n + r.jobs, 0)} in the period${skipped > 0 ? `, ${skipped} unreadable records skipped` : ""}\n`);
      } catch (err) {
        exitOnError(err);
      }
    });
  return subcommand("report").description("reports from what the daemons left: usage per user, account, partition or day").addCommand(usage);
}
