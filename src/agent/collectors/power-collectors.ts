import { raplZones, readRaplJoules } from "../power/rapl.js";
import type { Collector } from "./series-writer.js";

/**
 * node_exporter's rapl collector: `node_rapl_<zone>_joules_total{index,path}` per powercap zone.
 * A zone whose energy_uj cannot be read fails the collector (node_scrape_collector_success 0, and
 * the agent says why once) rather than leaving it quietly empty.
 */
export const raplCollector: Collector = {
  name: "rapl",
  async collect(w, p) {
    for (const z of raplZones(p.sys)) {
      w.counter(`node_rapl_${z.zone}_joules_total`, { index: z.index, path: z.path }, readRaplJoules(z), `Current RAPL ${z.zone} value in joules`);
    }
  },
};
