import type { JobCard } from "./job-card.js";

/** Bytes as a person reads them (binary units, three digits). */
export function bytesText(b: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = b;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[u]}`;
}

/** A duration as `2 d 3 h`, `1 h 02 min`, `4 min 05 s`, `12 s`. */
export function durationText(s: number): string {
  const t = Math.round(s);
  const d = Math.floor(t / 86_400);
  const h = Math.floor((t % 86_400) / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = t % 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${String(m).padStart(2, "0")} min`;
  if (m > 0) return `${m} min ${String(sec).padStart(2, "0")} s`;
  return `${sec} s`;
}

const pct = (v: number | null): string => (v === null ? "unknown" : `${v.toFixed(v < 10 ? 1 : 0)} %`);

/**
 * A job's card as a user reads it in a terminal (`banyan job report`) and in the end-of-job mail:
 * what it asked for beside what it used, one line a resource, then the site's notes.
 */
export function formatJobCard(c: JobCard): string {
  const m = c.metrics;
  const lines: string[] = [];
  const who = [c.user, c.account !== "" ? `account ${c.account}` : "", c.partition !== "" ? `partition ${c.partition}` : ""].filter((x) => x !== "").join(", ");
  lines.push(`Job ${c.job_id} (${who}): ${c.state}, score ${m.score === null ? "unknown" : `${m.score}/100`}`);
  const ran = m.elapsed_s === null ? "unknown" : durationText(m.elapsed_s);
  const limit = m.time_limit_s === null ? "" : ` of ${durationText(m.time_limit_s)}${m.time_used_percent !== null ? ` (${pct(m.time_used_percent)})` : ""}`;
  const nodes = `${c.nodes}${c.nodes_expected !== null && c.nodes_expected !== c.nodes ? ` of ${c.nodes_expected}` : ""} node${c.nodes === 1 ? "" : "s"}${c.nodelist !== null ? ` (${c.nodelist})` : ""}`;
  lines.push(`  started ${c.started_at.replace("T", " ").replace(/\.\d+Z$/, "Z")}, ${c.state === "running" ? "running for" : "ran"} ${ran}${limit}, on ${nodes}`);
  if (c.partial) lines.push(`  partial: ${c.missing_roots.length > 0 ? `roots ${c.missing_roots.join(", ")} did not answer` : "some of its nodes were not seen"}; the figures are of the nodes seen`);
  lines.push("");
  const row = (k: string, v: string): void => void lines.push(`  ${k.padEnd(8)} ${v}`);
  if (c.cpu.seconds === null) row("CPU", `unknown (no cgroup accounting on ${c.cpu.unaccounted_nodes.join(", ") || "its nodes"})`);
  else {
    const avg = m.elapsed_s !== null && m.elapsed_s > 0 ? c.cpu.seconds / m.elapsed_s : null;
    row("CPU", `${c.cpu.allocated !== null ? `${c.cpu.allocated} core${c.cpu.allocated === 1 ? "" : "s"} allocated, ` : ""}${avg !== null ? `${avg.toFixed(avg < 10 ? 2 : 1)} used on average` : `${c.cpu.seconds.toFixed(0)} CPU-seconds`}: efficiency ${pct(m.cpu_efficiency_percent)}`);
  }
  if (c.memory.peak_bytes !== null) {
    const req = c.memory.requested_bytes !== null ? ` of ${bytesText(c.memory.requested_bytes)} requested per node (${pct(m.memory_used_percent)} on the node nearest its limit)` : "";
    row("Memory", `peak ${bytesText(c.memory.peak_bytes)}${req}`);
  }
  if (c.gpu.count > 0) {
    row("GPU", `${c.gpu.count} GPU${c.gpu.count === 1 ? "" : "s"}, busy ${pct(m.gpu_utilization_percent)} of the time on average${m.gpu_memory_peak_bytes !== null ? `, memory peak ${bytesText(m.gpu_memory_peak_bytes)}` : ""}`);
    if (c.gpu.idle.length > 0) row("", `never used: ${c.gpu.idle.join(", ")}${(m.idle_gpus ?? 0) > c.gpu.idle.length ? ` and ${(m.idle_gpus ?? 0) - c.gpu.idle.length} more` : ""}`);
  }
  if (m.homogeneity_percent !== null && c.slowest_nodes.length > 0) row("Nodes", `slowest ${c.slowest_nodes[0]!.node}: ${pct(m.homogeneity_percent)} of the average node's CPU`);
  if (m.io_read_bytes !== null || m.io_written_bytes !== null) row("I/O", `read ${m.io_read_bytes === null ? "unknown" : bytesText(m.io_read_bytes)}, written ${m.io_written_bytes === null ? "unknown" : bytesText(m.io_written_bytes)}`);
  if (c.energy.kwh !== null) {
    const parts = Object.entries(c.energy.by_source).map(([s, j]) => `${s} ${(j / 3.6e6).toFixed(3)}`);
    row("Energy", `${c.energy.kwh.toFixed(3)} kWh (${parts.join(", ")})${c.energy.co2e_grams !== null ? `, ${c.energy.co2e_grams >= 1000 ? `${(c.energy.co2e_grams / 1000).toFixed(2)} kg` : `${c.energy.co2e_grams.toFixed(0)} g`} CO2e` : ""}`);
  }
  lines.push("");
  if (c.notes.length === 0) lines.push("No notes: the job used what it asked for.");
  else {
    lines.push("Notes:");
    for (const n of c.notes) lines.push(`  ${n.severity === "warning" ? "!" : "-"} ${n.message}`);
  }
  return lines.join("\n") + "\n";
}
