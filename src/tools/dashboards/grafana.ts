/**
 * The few pieces of Grafana's dashboard JSON (schema 39, Grafana 10/11) the generated dashboards
 * use: time series, stat, table, heatmap and row panels, query variables and the Prometheus data
 * source variable. Panels are laid out left to right, 24 columns wide, rows of equal height.
 */

/** One PromQL query of a panel; `legend` is Grafana's legendFormat (`{{instance}}`). */
export interface Query {
  readonly expr: string;
  readonly legend?: string;
  /** An instant query (tables, stats of "now"), else a range query. */
  readonly instant?: boolean;
  /** Buckets of a histogram (heatmap panels of `_bucket` series). */
  readonly heatmap?: boolean;
}

export type PanelKind = "timeseries" | "stat" | "table" | "heatmap";

export interface PanelSpec {
  readonly kind: PanelKind;
  readonly title: string;
  readonly description: string;
  readonly queries: readonly Query[];
  /** Grafana's unit id: percent, bytes, Bps, s, short, percentunit, ops. */
  readonly unit?: string;
  /** Columns of the 24 the panel takes (default: 12, stats 6). */
  readonly width?: number;
  readonly height?: number;
  readonly stack?: boolean;
  readonly max?: number;
}

export interface VariableSpec {
  readonly name: string;
  readonly label: string;
  /** `label_values(metric{…}, label)`, answered by Prometheus' series API. */
  readonly query: string;
  /** Several values and "All" (matched with =~). */
  readonly multi?: boolean;
  readonly description: string;
}

export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly variables: readonly VariableSpec[];
  readonly rows: readonly { readonly title: string; readonly panels: readonly PanelSpec[] }[];
  /** The time range shown at first (`now-<from>` to now). */
  readonly from?: string;
}

export interface DashboardOptions {
  /** Refresh of the dashboard, Grafana's format (`5s`, `1m`; "" for none). */
  readonly refresh: string;
}

const DATASOURCE = { type: "prometheus", uid: "${datasource}" } as const;

function fieldConfig(p: PanelSpec): Record<string, unknown> {
  const defaults: Record<string, unknown> = { unit: p.unit ?? "short" };
  if (p.max !== undefined) defaults["max"] = p.max;
  if (p.kind === "timeseries") defaults["custom"] = { lineWidth: 1, fillOpacity: p.stack === true ? 30 : 0, showPoints: "never", stacking: { mode: p.stack === true ? "normal" : "none", group: "A" } };
  if (p.kind === "stat") defaults["thresholds"] = { mode: "absolute", steps: [{ color: "green", value: null }] };
  return { defaults, overrides: [] };
}

function panelJson(p: PanelSpec, id: number, gridPos: { x: number; y: number; w: number; h: number }): Record<string, unknown> {
  const targets = p.queries.map((q, k) => ({
    datasource: DATASOURCE,
    refId: String.fromCharCode(65 + k),
    expr: q.expr,
    legendFormat: q.legend ?? "__auto",
    range: q.instant !== true,
    instant: q.instant === true,
    format: q.heatmap === true ? "heatmap" : p.kind === "table" ? "table" : "time_series",
  }));
  const options: Record<string, unknown> =
    p.kind === "heatmap"
      ? heatmapOptions(p)
      : p.kind === "stat"
        ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false }, colorMode: "value", graphMode: "area", textMode: "auto" }
        : p.kind === "table"
          ? { showHeader: true, cellHeight: "sm" }
          : { legend: { displayMode: "table", placement: "right", calcs: ["lastNotNull", "max"] }, tooltip: { mode: "multi", sort: "desc" } };
  const panel: Record<string, unknown> = { id, type: p.kind, title: p.title, description: p.description, datasource: DATASOURCE, gridPos, targets, options, fieldConfig: fieldConfig(p) };
  if (p.kind === "table") panel["transformations"] = [{ id: "merge", options: {} }, { id: "organize", options: { excludeByName: { Time: true } } }];
  return panel;
}

/** Per node (no buckets given): Grafana counts the nodes per value band; buckets: drawn as they are. */
function heatmapOptions(p: PanelSpec): Record<string, unknown> {
  const buckets = p.queries.some((q) => q.heatmap === true);
  return {
    calculate: !buckets,
    ...(buckets ? {} : { calculation: { yBuckets: { mode: "count", value: "20" } } }),
    color: { mode: "scheme", scheme: "Oranges", steps: 64, exponent: 0.5 },
    yAxis: { unit: p.unit ?? "short" },
    cellGap: 1,
    tooltip: { show: true, yHistogram: true },
    legend: { show: true },
  };
}

function variableJson(v: VariableSpec): Record<string, unknown> {
  return {
    name: v.name,
    label: v.label,
    description: v.description,
    type: "query",
    datasource: DATASOURCE,
    query: { query: v.query, refId: "PrometheusVariableQueryEditor-VariableQuery", qryType: 1 },
    definition: v.query,
    refresh: 2, // on time range change: a job that ended is still listed while the range holds it
    sort: 3, // numerically ascending: job ids
    multi: v.multi === true,
    includeAll: v.multi === true,
    // "All" matches a missing label too (a cluster view without the central root's cluster label).
    ...(v.multi === true ? { allValue: ".*", current: { selected: true, text: ["All"], value: ["$__all"] } } : {}),
    options: [],
    hide: 0,
  };
}

/** The dashboard's JSON as Grafana's file provisioning loads it: no numeric id, a fixed uid. */
export function dashboardJson(spec: DashboardSpec, opts: DashboardOptions): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({ id: id++, type: "row", title: row.title, collapsed: false, gridPos: { x: 0, y: y++, w: 24, h: 1 }, panels: [] });
    let x = 0;
    let rowHeight = 0;
    for (const p of row.panels) {
      const w = p.width ?? (p.kind === "stat" ? 6 : 12);
      const h = p.height ?? (p.kind === "stat" ? 4 : 8);
      if (x + w > 24) {
        y += rowHeight;
        x = 0;
        rowHeight = 0;
      }
      panels.push(panelJson(p, id++, { x, y, w, h }));
      x += w;
      rowHeight = Math.max(rowHeight, h);
    }
    y += rowHeight;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: [...spec.tags],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    time: { from: `now-${spec.from ?? "1h"}`, to: "now" },
    refresh: opts.refresh,
    timezone: "browser",
    links: [{ type: "dashboards", tags: ["banyan"], asDropdown: true, title: "Banyan", includeVars: false, keepTime: true }],
    templating: {
      list: [
        { name: "datasource", label: "Data source", type: "datasource", query: "prometheus", current: {}, hide: 0, options: [], refresh: 1, regex: "" },
        ...spec.variables.map(variableJson),
      ],
    },
    annotations: { list: [] },
    panels,
  };
}

/** Every query of a dashboard with the panel it is in (for tests and `--list`). */
export function queriesOf(spec: DashboardSpec): { panel: string; expr: string; instant: boolean }[] {
  return spec.rows.flatMap((r) => r.panels.flatMap((p) => p.queries.map((q) => ({ panel: `${r.title} / ${p.title}`, expr: q.expr, instant: q.instant === true }))));
}
