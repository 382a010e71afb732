import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { packageFile } from "../../core/package-file.js";
import type { RootHttpServer } from "./http-server.js";

const require = createRequire(import.meta.url);

/** The page's files: Banyan's own (data/page) and uPlot's build, read once at start, served by the root itself (no CDN, no build step). */
function assets(): Map<string, { type: string; body: string }> {
  const page = (f: string): string => readFileSync(packageFile(`data/page/${f}`), "utf8");
  const uplot = (f: string): string => readFileSync(require.resolve(`uplot/dist/${f}`), "utf8");
  return new Map([
    ["/", { type: "text/html; charset=utf-8", body: page("index.html") }],
    ["/ui/app.js", { type: "text/javascript; charset=utf-8", body: page("app.js") }],
    ["/ui/app.css", { type: "text/css; charset=utf-8", body: page("app.css") }],
    ["/ui/uPlot.iife.min.js", { type: "text/javascript; charset=utf-8", body: uplot("uPlot.iife.min.js") }],
    ["/ui/uPlot.min.css", { type: "text/css; charset=utf-8", body: uplot("uPlot.min.css") }],
  ]);
}

/**
 * The live page at `/`: the trees (a cell per node, coloured by state), a heatmap of one metric,
 * the jobs and a job's page with a chart per metric across its nodes, USE by partition, and
 * Banyan's own health. Its data come over the root's streams (inventory, watch, jobs, use,
 * health), behind the same web config (TLS, basic auth) as everything else on the port.
 */
export function liveRoutes(http: RootHttpServer): void {
  const files = assets();
  for (const [path, f] of files) http.route(path, async (_req, url) => (url.pathname === path ? { status: 200, ...f, headers: PAGE_HEADERS } : null));
}

/** The page runs only its own scripts and talks only to its root; no site may frame it. */
const PAGE_HEADERS = Object.freeze({
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
});
