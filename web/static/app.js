/* Pages' behaviour: local times, search filter, Plotly figures and live updates.
 *
 * No inline scripts anywhere (the CSP forbids them): figures arrive as JSON data blocks
 * (<script type="application/json">, never executed) built by web/figures.py, and live data
 * comes from two polls, both with If-None-Match so an unchanged answer is a 304:
 *   - the series endpoint of the API every few seconds, appended to the chart's traces
 *     (each trace names its series field in trace.meta.field);
 *   - the page's /live/... JSON every detection cycle: whole figures, texts, badges, tables.
 */
(function () {
  "use strict";


  // ------------------------------------------------------------------ times
  function pad(n) { return String(n).padStart(2, "0"); }

  function toDate(value) {
    if (typeof value === "number") {
      if (value > 1e11) return new Date(value);
      if (value < 1e8) return new Date(value * 60000);
      return new Date(value * 1000);
    }
    if (typeof value !== "string") return null;
    // "2023-12-21 05:42" (the figures' UTC labels) and ISO strings without a zone are UTC.
    let text = value.trim().replace(" ", "T");
    if (!/[zZ]|[+-]\d\d:?\d\d$/.test(text)) text += "Z";
    const d = new Date(text);
    return isNaN(d.getTime()) ? null : d;
  }

  function utcLabel(d) {
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }

  function localTitle(d) {
    return "Your time: " + d.toLocaleString(undefined, {
      weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
      timeZoneName: "short",
    });
  }

  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      const d = toDate(el.getAttribute("datetime"));
      if (d) el.title = localTitle(d);
    });
  }

  // ----------------------------------------------------------------- search
  function setUpFilter() {
    const input = document.querySelector("input[data-filter]");
    if (!input) return;
    const list = document.querySelector(input.dataset.filter);
    const none = document.getElementById("no-match");
    function apply() {
      const q = input.value.trim().toLowerCase();
      let shown = 0;
      list.querySelectorAll("[data-search]").forEach(function (item) {
        const hit = !q || item.dataset.search.includes(q);
        item.hidden = !hit;
        if (hit) shown += 1;
      });
      if (none) none.hidden = shown > 0;
    }
    input.addEventListener("input", apply);
    apply();
  }

  // ---------------------------------------------------------------- figures
  let plotlyReady = null;

  function loadPlotly() {
    if (window.Plotly) return Promise.resolve(window.Plotly);
    if (!plotlyReady) {
      plotlyReady = new Promise(function (resolve, reject) {
        const s = document.createElement("script");
        s.src = document.body.dataset.plotly || "/static/vendor/plotly.min.js";
        s.onload = function () { resolve(window.Plotly); };
        s.onerror = function () { reject(new Error("plotly.js did not load")); };
        document.head.appendChild(s);
      });
    }
    return plotlyReady;
  }

  function readFigure(el) {
    const block = el.dataset.figure && document.getElementById(el.dataset.figure);
    if (!block) return null;
    try { return JSON.parse(block.textContent); } catch (e) { return null; }
  }

  // Maps keep their aspect ratio on narrow screens instead of a fixed height.
  function fitHeight(el, layout) {
    if (!layout.geo || !el.clientWidth || el.clientWidth >= 640) return layout;
    const margin = layout.margin || {};
    const h = Math.round(el.clientWidth * (layout.geo.scope === "usa" ? 0.62 : 0.56));
    return Object.assign({}, layout, { height: h + (margin.t || 0) + (margin.b || 0) });
  }

  function draw(el, fig) {
    return window.Plotly.react(el, fig.data, fitHeight(el, fig.layout), fig.config || {});
  }

  // Put the series endpoint's answer ({timestamps, reports, expected, upper}) into the
  // chart's traces without rebuilding the figure; update the counts shown beside it.
  function applySeries(el, body) {
    const times = body && body.timestamps;
    if (!Array.isArray(times) || !el.data) return;
    const x = times.map(function (t) { const d = toDate(t); return d ? utcLabel(d) : null; });
    const xs = [], ys = [], idx = [];
    el.data.forEach(function (trace, i) {
      const values = trace.meta && body[trace.meta.field];
      if (Array.isArray(values) && values.length === x.length) {
        xs.push(x); ys.push(values); idx.push(i);
      }
    });
    if (idx.length) {
      // Follow the live edge unless the reader has zoomed or panned away from it.
      const old = el.data[idx[0]].x;
      const range = el.layout.xaxis && el.layout.xaxis.range;
      const following = !range || !old.length || String(range[1]) === String(old[old.length - 1]);
      window.Plotly.restyle(el, { x: xs, y: ys }, idx);
      if (following && x.length) {
        window.Plotly.relayout(el, { "xaxis.range": [x[0], x[x.length - 1]] });
      }
    }
    const reports = Array.isArray(body.reports) ? body.reports : [];
    const sum = function (n) {
      return Math.round(reports.slice(-n).reduce(function (a, b) { return a + (+b || 0); }, 0));
    };
    setText("count-15", String(sum(15)));
    setText("count-hour", String(sum(60)));
    const empty = document.getElementById("chart-empty");
    if (empty) empty.hidden = x.length > 0;
    el.dataset.points = String(x.length);
    el.dataset.lastTime = x.length ? x[x.length - 1] : "";
  }

  function showHoverTime(el) {
    const out = document.getElementById("hover-time");
    if (!out || !el.on) return;
    el.on("plotly_hover", function (ev) {
      const d = ev.points && ev.points.length && toDate(ev.points[0].x);
      if (!d) return;
      out.textContent = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + " UTC · " +
        d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit",
                                          timeZoneName: "short" }) + " your time";
    });
  }

  // ------------------------------------------------------------------- live
  function setText(id, text) {
    const el = document.getElementById(id);
    if (el && el.textContent !== text) el.textContent = text;
  }

  function setBadge(id, badge) {
    const el = document.getElementById(id);
    if (!el) return;
    el.className = "badge level-" + badge.level;
    el.textContent = badge.label;
    const card = el.closest(".svc-card");
    if (card) card.className = "svc-card level-" + badge.level;
  }

  function cell(tag, text, cls) {
    const c = document.createElement(tag);
    if (cls) c.className = cls;
    c.textContent = text;
    return c;
  }

  function fillTable(rows) {
    const body = document.querySelector("#chart-table tbody");
    if (!body || !Array.isArray(rows)) return;
    const frag = document.createDocumentFragment();
    rows.forEach(function (r) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      const t = document.createElement("time");
      const d = new Date(r.epoch * 1000);
      t.dateTime = d.toISOString();
      t.textContent = pad(d.getUTCDate()) + " " + d.toLocaleString("en-GB",
        { month: "short", timeZone: "UTC" }) + " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
      th.appendChild(t);
      tr.appendChild(th);
      const dash = function (v) { return v === null || v === undefined ? "–" : String(v); };
      tr.appendChild(cell("td", dash(r.reports), "num"));
      tr.appendChild(cell("td", dash(r.expected), "num"));
      tr.appendChild(cell("td", dash(r.upper), "num"));
      frag.appendChild(tr);
    });
    body.replaceChildren(frag);
    localizeTimes(body);
  }

  // Comments are user input: only ever set through textContent, never as HTML.
  function fillComments(items) {
    const list = document.getElementById("comments");
    if (!list || !Array.isArray(items)) return;
    const frag = document.createDocumentFragment();
    items.forEach(function (c) {
      const li = document.createElement("li");
      li.appendChild(cell("p", c.text, "comment-text"));
      const meta = cell("p", "", "comment-meta");
      if (c.iso) {
        const t = cell("time", c.time);
        t.dateTime = c.iso;
        meta.appendChild(t);
      }
      if (c.meta) meta.appendChild(document.createTextNode((c.iso ? " · " : "") + c.meta));
      li.appendChild(meta);
      frag.appendChild(li);
    });
    if (!items.length) frag.appendChild(cell("li", "No comments yet.", "empty"));
    list.replaceChildren(frag);
    localizeTimes(list);
  }

  function applyLive(body) {
    const jobs = [];
    Object.entries(body.figures || {}).forEach(function ([id, fig]) {
      const el = document.getElementById(id);
      if (el && fig) jobs.push(draw(el, fig));
    });
    Object.entries(body.texts || {}).forEach(function ([id, text]) { setText(id, text); });
    Object.entries(body.badges || {}).forEach(function ([id, badge]) { setBadge(id, badge); });
    if (body.table) fillTable(body.table);
    if (body.comments) fillComments(body.comments);
    return Promise.all(jobs);
  }

  // Poll url with If-None-Match every ms milliseconds while the page is visible.
  function poll(url, ms, onData) {
    let etag = null;
    let busy = false;
    async function tick() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const headers = etag ? { "If-None-Match": etag } : {};
        const resp = await fetch(url, { headers: headers, cache: "no-store",
                                        credentials: "same-origin" });
        if (resp.status === 200) {
          etag = resp.headers.get("ETag");
          await onData(await resp.json());
        }
      } catch (e) {
        // Offline or a restart: keep the last picture and try again on the next tick.
      } finally {
        busy = false;
      }
    }
    setInterval(tick, ms);
    document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
    return tick;
  }

  // The chart on pages that only say which service (the thank-you page): fetch its figure.
  async function standaloneChart(el) {
    const slug = el.dataset.service;
    const live = "/live/s/" + encodeURIComponent(slug) + ".json";
    const resp = await fetch(live, { cache: "no-store" });
    if (!resp.ok) return;
    const body = await resp.json();
    el.classList.add("plot", "chart");
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", "Reports per minute for this service over the last 24 hours");
    await draw(el, body.figures.chart);
    startSeries(el, el.dataset.seriesUrl || body.series_url, 5000);
  }

  function startSeries(el, url, ms) {
    if (!url) return;
    const tick = poll(url, ms, function (body) { applySeries(el, body); });
    tick();
  }

  async function start() {
    localizeTimes(document);
    setUpFilter();
    const plots = Array.from(document.querySelectorAll("[data-figure]"));
    const bare = document.querySelector("#chart[data-service]:not([data-figure])");
    if (!plots.length && !bare) {
      document.body.dataset.ready = "1";
      return;
    }
    await loadPlotly();
    await Promise.all(plots.map(function (el) {
      const fig = readFigure(el);
      return fig ? draw(el, fig) : null;
    }));
    const chart = document.getElementById("chart");
    if (chart && bare) await standaloneChart(chart);
    if (chart) showHoverTime(chart);
    const src = document.getElementById("series-source");
    if (src && chart) startSeries(chart, src.dataset.url, +src.dataset.pollMs || 5000);
    const live = document.querySelector("[data-live]");
    if (live && live.dataset.live) {
      poll(live.dataset.live, +live.dataset.pollMs || 15000, applyLive);
    }
    document.body.dataset.ready = "1";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
