// Banyan's live page: served by every root, fed by its streams (server-sent events), drawn on
// canvases so 10,000 nodes are 10,000 rectangles, not 10,000 elements. No build step, no CDN.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const params = new URLSearchParams(location.search);
  const nodes = new Map(); // key (node, or cluster/node) → inventory entry
  const heat = new Map(); // key → value of the chosen metric
  const prev = new Map(); // key → {v, t} for rates
  const jobs = new Map(); // job id → figures
  const jobPrev = new Map();
  let metric = params.get("metric") ?? "cpu";
  let arrange = params.get("arrange") ?? "tree";
  let heatStream = null;
  let dirty = true;
  let layout = [];
  let state = { job: null, use: {}, health: {} };

  const stream = (url, handlers) => {
    const es = new EventSource(url);
    for (const [event, fn] of Object.entries(handlers)) es.addEventListener(event, (e) => fn(JSON.parse(e.data)));
    return es;
  };
  /** Text for innerHTML: job ids, users and partitions come from the nodes' series, and a hostile node could send markup. */
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const keyOf = (labels) => (labels.cluster ? `${labels.cluster}/` : "") + labels.instance;
  const fmt = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(v) ? "–" : Math.abs(v) >= 1e9 ? (v / 1e9).toFixed(digits) + " G" : Math.abs(v) >= 1e6 ? (v / 1e6).toFixed(digits) + " M" : Math.abs(v) >= 1e3 ? (v / 1e3).toFixed(digits) + " k" : v.toFixed(digits));
  /** A counter's rate from its last two values (null at first, and after a reset). */
  const rateOf = (store, key, v, tS) => {
    const p = store.get(key);
    store.set(key, { v, t: tS });
    if (p === undefined || tS <= p.t || v < p.v) return null;
    return (v - p.v) / (tS - p.t);
  };

  // ---- Nodes: the inventory stream.
  stream("/api/v1/inventory?watch=1", {
    snapshot: (d) => {
      nodes.clear();
      for (const [k, v] of Object.entries(d.items)) nodes.set(k, v);
      dirty = true;
    },
    update: (d) => {
      for (const [k, v] of Object.entries(d.items)) nodes.set(k, v);
      for (const k of d.gone) nodes.delete(k);
      dirty = true;
    },
  });

  const stateOf = (n) => (!n.up ? "down" : n.resyncing ? "resync" : n.parent && n.planned_parent && n.parent !== n.planned_parent ? "away" : "up");
  const COLORS = { up: "#2fa84f", away: "#e0a21b", resync: "#3a7bd5", down: "#5a1f1f" };

  /** Groups of node keys in drawing order: by tree, each tree depth-first from its planned parents (a relay's subtree is one run), or by switch. */
  function groups() {
    const by = new Map();
    for (const [k, n] of nodes) {
      const g = arrange === "switch" ? (n.switch ?? "no switch") : n.tree === null ? "other" : `tree ${n.tree}`;
      if (!by.has(g)) by.set(g, []);
      by.get(g).push(k);
    }
    const out = [];
    for (const g of [...by.keys()].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }))) {
      const keys = by.get(g);
      if (arrange === "switch") {
        out.push({ label: g, keys: keys.sort() });
        continue;
      }
      const set = new Set(keys);
      const kids = new Map();
      const tops = [];
      for (const k of keys) {
        const n = nodes.get(k);
        const pk = n.planned_parent === null ? null : (n.cluster ? `${n.cluster}/` : "") + n.planned_parent;
        if (pk !== null && set.has(pk)) {
          if (!kids.has(pk)) kids.set(pk, []);
          kids.get(pk).push(k);
        } else tops.push(k);
      }
      const seq = [];
      const visit = (k) => {
        seq.push(k);
        for (const c of (kids.get(k) ?? []).sort()) visit(c);
      };
      for (const k of tops.sort()) visit(k);
      out.push({ label: g, keys: seq });
    }
    return out;
  }

  /** Draws cells for every node, a band per group; `color(key)` picks each cell's colour. Returns the layout for pointing. */
  function draw(canvas, color) {
    const gs = groups();
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 1000;
    const n = Math.max(1, nodes.size);
    const cell = Math.max(4, Math.min(18, Math.floor(Math.sqrt((width * 320) / n))));
    const cols = Math.max(1, Math.floor((width - 80) / cell));
    let height = 4;
    for (const g of gs) height += Math.ceil(g.keys.length / cols) * cell + 4;
    canvas.width = width * dpr;
    canvas.height = Math.max(40, height) * dpr;
    canvas.style.height = `${Math.max(40, height)}px`;
    const ctx = canvas.getContext("2d");
    ctx.scale(dpr, dpr);
    ctx.font = "11px system-ui";
    const cells = [];
    let y = 4;
    for (const g of gs) {
      ctx.fillStyle = "#8a949e";
      ctx.fillText(g.label, 2, y + Math.min(cell, 12) - 1);
      g.keys.forEach((k, i) => {
        const x = 80 + (i % cols) * cell;
        const yy = y + Math.floor(i / cols) * cell;
        ctx.fillStyle = color(k);
        ctx.fillRect(x, yy, cell - 1, cell - 1);
        cells.push({ k, x, y: yy, size: cell });
      });
      y += Math.ceil(g.keys.length / cols) * cell + 4;
    }
    return cells;
  }

  function cellAt(cells, e, canvas) {
    const r = canvas.getBoundingClientRect();
    const x = e.clientX - r.left;
    const y = e.clientY - r.top;
    return cells.find((c) => x >= c.x && x < c.x + c.size && y >= c.y && y < c.y + c.size);
  }

  let heatCells = [];
  /** What the page did, for the bench: renders and the time they took. */
  const perf = (window.__banyanPage = { renders: 0, renderMs: 0, firstFullMs: null });
  function render() {
    if (!dirty) return;
    dirty = false;
    const t0 = performance.now();
    layout = draw($("trees"), (k) => COLORS[stateOf(nodes.get(k))]);
    const spec = METRICS[metric];
    let max = spec.max ?? 0;
    if (spec.max === undefined) for (const v of heat.values()) if (v > max) max = v;
    heatCells = draw($("heat"), (k) => {
      const v = heat.get(k);
      return v === undefined || v === null || Number.isNaN(v) ? "#22272e" : ramp(max > 0 ? v / max : 0);
    });
    $("heat-scale").textContent = `0 – ${fmt(max)} ${spec.unit}`;
    const counts = { up: 0, away: 0, resync: 0, down: 0 };
    for (const n of nodes.values()) counts[stateOf(n)]++;
    $("summary").textContent = `${nodes.size} nodes: ${counts.up + counts.away + counts.resync} up (${counts.away} away, ${counts.resync} resyncing), ${counts.down} down · ${jobs.size} jobs`;
    document.body.dataset.nodes = String(nodes.size);
    perf.renders++;
    perf.renderMs += performance.now() - t0;
    if (perf.firstFullMs === null && nodes.size > 0 && heat.size >= nodes.size * 0.99) perf.firstFullMs = performance.now();
    // The page's data as JSON, for tests to read (?state=off leaves it out: at 10,000 nodes it is a few hundred kB a render).
    if (params.get("state") === "off") return;
    $("state").textContent = JSON.stringify({
      nodes: Object.fromEntries([...nodes].map(([k, n]) => [k, stateOf(n)])),
      heat: { metric, values: Object.fromEntries(heat) },
      jobs: [...jobs.keys()],
      job: state.job,
      use: state.use,
      health: state.health,
    });
  }
  /** Dark blue → green → yellow → red. */
  function ramp(x) {
    const s = Math.max(0, Math.min(1, x));
    const stops = [[20, 40, 90], [40, 160, 90], [230, 200, 40], [220, 50, 40]];
    const f = s * (stops.length - 1);
    const i = Math.min(stops.length - 2, Math.floor(f));
    const t = f - i;
    const c = stops[i].map((a, j) => Math.round(a + (stops[i + 1][j] - a) * t));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }

  const info = (k) => {
    const n = nodes.get(k);
    if (!n) return "";
    return `${k}  ${stateOf(n)}  tree ${n.tree ?? "–"}  parent ${n.parent ?? "–"} (planned ${n.planned_parent ?? "–"})  root ${n.root}` +
      `\npartitions ${n.partitions.join(",") || "–"}  features ${n.features.join(",") || "–"}  jobs ${n.jobs.join(",") || "–"}` +
      `\n${n.cpus ?? "?"} CPUs  ${fmt(n.memory_bytes)}B memory  ${n.gpus ?? 0} GPUs ${n.gpu_model ?? ""}  ${n.os ?? ""} ${n.kernel ?? ""}  failovers (1 h) ${n.failovers_1h ?? 0}` +
      (heat.has(k) ? `\n${metric}: ${fmt(heat.get(k), 2)} ${METRICS[metric].unit}` : "");
  };
  $("trees").addEventListener("mousemove", (e) => {
    const c = cellAt(layout, e, $("trees"));
    if (c) $("node-info").textContent = info(c.k);
  });
  $("heat").addEventListener("mousemove", (e) => {
    const c = cellAt(heatCells, e, $("heat"));
    if (c) $("node-info").textContent = info(c.k);
  });

  // ---- Heatmap: one watch at a time, on the chosen metric (rates computed here from counters).
  const METRICS = {
    cpu: { q: 'match[]=node_cpu_seconds_total{mode="idle"}&agg=sum&by=instance,cluster', rate: true, unit: "%", max: 100, value: (r, k) => 100 * (1 - r / (nodes.get(k)?.cpus || 1)) },
    load: { q: "match[]=node_load1", unit: "", value: (v) => v },
    mem: { q: "match[]=node_memory_MemAvailable_bytes", unit: "%", max: 100, value: (v, k) => 100 * (1 - v / (nodes.get(k)?.memory_bytes || NaN)) },
    gpu: { q: "match[]=DCGM_FI_DEV_GPU_UTIL&agg=avg&by=instance,cluster", unit: "%", max: 100, value: (v) => v },
    net: { q: 'match[]={__name__=~"node_network_(receive|transmit)_bytes_total"}&agg=sum&by=instance,cluster', rate: true, unit: "B/s", value: (r) => r },
    io: { q: 'match[]={__name__=~"node_disk_(read|written)_bytes_total"}&agg=sum&by=instance,cluster', rate: true, unit: "B/s", value: (r) => r },
  };
  function watchHeat() {
    heatStream?.close();
    heat.clear();
    prev.clear();
    const spec = METRICS[metric];
    const take = (d) => {
      for (const e of d.result) {
        const k = keyOf(e.metric);
        if (e.gone) {
          heat.delete(k);
          continue;
        }
        const v = Number(e.value[1]);
        const x = spec.rate ? rateOf(prev, k, v, e.value[0]) : v;
        if (x !== null) heat.set(k, spec.value(x, k));
      }
      dirty = true;
    };
    heatStream = stream(`/api/v1/watch?${spec.q}`, { snapshot: take, update: take });
  }
  $("metric").value = metric;
  $("arrange").value = arrange;
  $("metric").addEventListener("change", (e) => {
    metric = e.target.value;
    watchHeat();
  });
  $("arrange").addEventListener("change", (e) => {
    arrange = e.target.value;
    dirty = true;
  });
  watchHeat();

  // ---- Jobs: the list, and a job's page with a chart per metric across its nodes.
  const jobRow = (j) => {
    const cores = j.cores ?? null;
    return `<tr data-job="${esc(j.job_id)}"><td>${esc(j.job_id)}</td><td>${esc(j.user)}</td><td>${esc(j.partition)}</td><td>${j.nodes.length}</td><td>${fmt(cores, 2)}</td><td>${fmt(j.memory_bytes)}B</td><td>${j.gpu_utilization_percent === null ? "–" : fmt(j.gpu_utilization_percent, 0)}</td><td>${fmt(j.io)}</td></tr>`;
  };
  /** Jobs, USE and health: one stream (a browser opens at most six connections to a host). */
  const takeOverview = (d, snapshot) => {
    if (snapshot) jobs.clear();
    const now = d.time_ms / 1000;
    for (const [key, v] of Object.entries(d.items)) {
      if (key === "health") takeHealth(v, d.time_ms);
      else if (key.startsWith("use:")) state.use[key.slice(4)] = v;
      else if (key.startsWith("job:")) {
        const id = key.slice(4);
        v.cores = rateOf(jobPrev, `${id} cpu`, v.cpu_seconds, now);
        v.io = rateOf(jobPrev, `${id} io`, v.io_read_bytes + v.io_written_bytes, now);
        if (v.running) jobs.set(id, v);
        else jobs.delete(id);
        if (state.job?.id === id) showJob(v);
      }
    }
    for (const key of d.gone ?? []) {
      if (key.startsWith("job:")) jobs.delete(key.slice(4));
      if (key.startsWith("use:")) delete state.use[key.slice(4)];
    }
    $("jobs").tBodies[0].innerHTML = [...jobs.values()].sort((a, b) => a.job_id.localeCompare(b.job_id, undefined, { numeric: true })).map(jobRow).join("");
    takeUse();
    dirty = true;
  };
  $("jobs").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-job]");
    if (tr) openJob(tr.dataset.job);
  });

  let jobStreams = [];
  function openJob(id) {
    for (const s of jobStreams) s.close();
    jobStreams = [];
    $("job-page").hidden = false;
    $("job-title").textContent = `Job ${id}`;
    $("job-charts").innerHTML = "";
    state.job = { id, nodes: [] };
    $("job-figures").textContent = "not seen at this root (yet)";
    history.replaceState(null, "", `?${new URLSearchParams({ ...Object.fromEntries(params), job: id })}`);
    if (jobs.has(id)) showJob(jobs.get(id));
    // One watch, three metrics of the job's nodes, a chart each.
    const charts = [
      { title: "CPU cores", name: "banyan_job_cpu_seconds_total", rate: true },
      { title: "memory bytes", name: "banyan_job_memory_bytes" },
      { title: "GPU utilisation %", name: "banyan_job_gpu_utilization_percent" },
    ].map((c) => ({ ...c, take: chart($("job-charts"), c.title, c.rate) }));
    const match = charts.map((c) => `match[]=${encodeURIComponent(`${c.name}{job_id="${id}"}`)}`).join("&");
    const take = (d) => {
      for (const c of charts) c.take(d.time_ms / 1000, d.result.filter((e) => e.metric.__name__ === c.name));
    };
    jobStreams.push(stream(`/api/v1/watch?${match}`, { snapshot: take, update: take }));
  }

  function showJob(j) {
    state.job.nodes = j.nodes;
    state.job.running = j.running;
    const gpu = `GPUs ${j.gpus} at ${j.gpu_utilization_percent === null ? "–" : fmt(j.gpu_utilization_percent, 0)} %`;
    if (j.running) {
      state.job.report = null;
      $("job-figures").textContent = `${j.user} · ${j.partition} · ${j.nodes.length} nodes (${j.nodes.join(", ")}) · running` +
        `\nCPU ${fmt(j.cores, 2)} cores (${fmt(j.cpu_seconds)} s)  memory ${fmt(j.memory_bytes)}B (peak ${fmt(j.memory_peak_bytes)}B)  ${gpu}  I/O ${fmt(j.io)} B/s`;
    } else {
      // Its report: the root's last figures of it, over the time it was seen.
      const durationS = Math.max(0, (Date.parse(j.last_seen) - Date.parse(j.first_seen)) / 1000);
      const efficiency = j.cpus_allocated > 0 && durationS > 0 ? j.cpu_seconds / (j.cpus_allocated * durationS) : null;
      state.job.report = { duration_s: durationS, cpu_seconds: j.cpu_seconds, cpu_efficiency: efficiency, memory_peak_bytes: j.memory_peak_bytes, io_bytes: j.io_read_bytes + j.io_written_bytes };
      $("job-figures").textContent = `${j.user} · ${j.partition} · ${j.nodes.length} nodes (${j.nodes.join(", ")}) · ended ${j.last_seen.replace("T", " ").slice(0, 19)} after ${fmt(durationS, 0)} s` +
        `\nCPU ${fmt(j.cpu_seconds)} s (efficiency ${efficiency === null ? "–" : fmt(100 * efficiency, 0) + " %"})  memory peak ${fmt(j.memory_peak_bytes)}B  ${gpu}  read ${fmt(j.io_read_bytes)}B  written ${fmt(j.io_written_bytes)}B`;
    }
    dirty = true;
  }

  /** A uPlot chart with one line per node; `take(time, elements)` adds a point (the last 300 kept). */
  function chart(parent, title, rate) {
    const box = document.createElement("div");
    parent.appendChild(box);
    const series = new Map();
    const rates = new Map();
    const times = [];
    let plot = null;
    let names = [];
    const redraw = () => {
      const keys = [...series.keys()].sort();
      const data = [times, ...keys.map((k) => series.get(k))];
      if (plot === null || keys.join() !== names.join()) {
        plot?.destroy();
        names = keys;
        const colors = ["#2fa84f", "#3a7bd5", "#e0a21b", "#d5453a", "#9b59b6", "#1abc9c", "#e67e22", "#95a5a6"];
        plot = new uPlot({ title, width: Math.min(560, parent.clientWidth || 560), height: 200, series: [{}, ...keys.map((k, i) => ({ label: k, stroke: colors[i % colors.length] }))], axes: [{ stroke: "#8a949e" }, { stroke: "#8a949e" }] }, data, box);
      } else plot.setData(data);
    };
    return (t, elements) => {
      times.push(t);
      for (const arr of series.values()) arr.push(arr.length > 0 ? arr[arr.length - 1] : null);
      for (const e of elements) {
        const k = keyOf(e.metric);
        if (!series.has(k)) series.set(k, times.map(() => null));
        const arr = series.get(k);
        const v = Number(e.value[1]);
        arr[arr.length - 1] = e.gone ? null : rate ? rateOf(rates, k, v, e.value[0]) : v;
      }
      if (times.length > 300) {
        times.shift();
        for (const arr of series.values()) arr.shift();
      }
      redraw();
    };
  }

  // ---- USE by partition, and Banyan's own health: views the root computes each interval.
  stream("/api/v1/overview?watch=1", { snapshot: (d) => takeOverview(d, true), update: (d) => takeOverview(d, false) });
  function takeUse() {
    $("use").tBodies[0].innerHTML = Object.entries(state.use)
      .sort()
      .map(([p, u]) => `<tr><td>${esc(p)}</td><td>${u.nodes_up}/${u.nodes}</td><td>${fmt(u.cpu_busy_percent)}</td><td>${fmt(u.load_per_core, 2)}</td><td>${fmt(u.memory_used_percent)}</td><td>${fmt(u.memory_pressure, 3)}</td><td>${fmt(u.net_errors_per_s, 2)}</td></tr>`)
      .join("");
    dirty = true;
  }
  const healthSeries = { t: [], ingest: [], resyncs: [], latency: [] };
  let healthPlot = null;
  function takeHealth(h, timeMs) {
    if (!h) return;
    state.health = h;
    $("health-figures").textContent = `ingest ${fmt(h.updates_per_s)} updates/s · ${fmt(h.frames_per_s)} frames/s · resyncs ${fmt(h.resyncs_per_s, 2)}/s · failovers (1 h) ${h.failovers_1h} · sample→root p50 ${fmt(h.latency_p50_ms, 0)} ms, p99 ${fmt(h.latency_p99_ms, 0)} ms · nodes up ${h.nodes_up} · watchers ${h.watchers}`;
    healthSeries.t.push(timeMs / 1000);
    healthSeries.ingest.push(h.updates_per_s);
    healthSeries.resyncs.push(h.resyncs_per_s);
    healthSeries.latency.push(h.latency_p99_ms);
    if (healthSeries.t.length > 300) for (const a of Object.values(healthSeries)) a.shift();
    const data = [healthSeries.t, healthSeries.ingest, healthSeries.resyncs, healthSeries.latency];
    if (healthPlot === null) {
      healthPlot = new uPlot(
        {
          title: "ingest (updates/s), resyncs/s, p99 sample→root (ms)",
          width: Math.min(900, $("health-charts").clientWidth || 900),
          height: 200,
          series: [{}, { label: "updates/s", stroke: "#2fa84f", scale: "u" }, { label: "resyncs/s", stroke: "#e0a21b", scale: "r" }, { label: "p99 ms", stroke: "#3a7bd5", scale: "r" }],
          axes: [{ stroke: "#8a949e" }, { stroke: "#8a949e", scale: "u" }, { stroke: "#8a949e", scale: "r", side: 1 }],
        },
        data,
        $("health-charts"),
      );
    } else healthPlot.setData(data);
  }

  fetch("/api/v1/status")
    .then((r) => r.json())
    .then((s) => {
      $("root").textContent = s.root;
      document.title = `Banyan ${s.root}`;
    })
    .catch(() => undefined);
  if (params.get("job")) openJob(params.get("job"));
  setInterval(render, 500);
  window.addEventListener("resize", () => (dirty = true));
})();
