/* Pages' behaviour: local times, search filter, Plotly figures, live updates, the report form.
 *
 * No inline scripts anywhere (the CSP forbids them): figures arrive as JSON data blocks
 * (<script type="application/json">, never executed) built by web/figures.py, and live data
 * comes from two polls, both with If-None-Match so an unchanged answer is a 304:
 *   - the chart's /live/s/<slug>/chart.json every few seconds, asking only for the buckets
 *     after the last one it has (each trace names its field in trace.meta.field);
 *   - the page's /live/... JSON every detection cycle: figures that changed, texts, badges.
 * plotly.js is loaded only on pages that draw a figure.
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

  // Merge the chart endpoint's answer (buckets from `after` on, and the running bucket)
  // into the chart's traces without rebuilding the figure. Times are the figures' UTC labels
  // ("YYYY-MM-DD HH:MM"), which order as strings.
  function applyChart(el, body) {
    if (!body || !Array.isArray(body.x) || !el.data) return;
    const first = body.x.length ? body.x[0] : null;
    const xs = [], ys = [], idx = [];
    el.data.forEach(function (trace, i) {
      const field = trace.meta && trace.meta.field;
      if (field === "current") {
        if (body.current) { xs.push([body.current.x]); ys.push([body.current.y]); idx.push(i); }
        return;
      }
      const values = field && body[field];
      if (!Array.isArray(values) || values.length !== body.x.length) return;
      const keepX = [], keepY = [];
      (trace.x || []).forEach(function (x, j) {
        if (x >= body.start && (first === null || x < first)) {
          keepX.push(x); keepY.push(trace.y[j]);
        }
      });
      xs.push(keepX.concat(body.x)); ys.push(keepY.concat(values)); idx.push(i);
    });
    if (!idx.length) return;
    // Follow the live edge unless the reader has zoomed or panned away from it.
    const range = el.layout.xaxis && el.layout.xaxis.range;
    const edge = el.dataset.edge || (range ? String(range[1]) : "");
    const following = !range || String(range[1]) === edge;
    window.Plotly.restyle(el, { x: xs, y: ys }, idx);
    const right = body.current ? body.current.x : body.x[body.x.length - 1];
    if (following && right) {
      window.Plotly.relayout(el, { "xaxis.range": [body.start, right] });
      el.dataset.edge = right;
    }
    const reports = el.data.find(function (t) { return t.meta && t.meta.field === "reports"; });
    const points = reports ? reports.x.length : 0;
    const empty = document.getElementById("chart-empty");
    if (empty) empty.hidden = points > 0;
    el.dataset.points = String(points);
    el.dataset.lastTime = points ? reports.x[points - 1] : "";
  }

  function lastBucketEpoch(el) {
    const reports = (el.data || []).find(function (t) { return t.meta && t.meta.field === "reports"; });
    if (!reports || !reports.x.length) return null;
    const d = toDate(reports.x[reports.x.length - 1]);
    return d ? Math.floor(d.getTime() / 1000) : null;
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

  // Figure hashes the page has: the server leaves those figures out of its answer.
  const figureHashes = {};

  function liveUrl(url) {
    const have = Object.values(figureHashes).join(",");
    return have ? url + (url.includes("?") ? "&" : "?") + "have=" + have : url;
  }

  function applyLive(body) {
    const jobs = [];
    Object.assign(figureHashes, body.hashes || {});
    Object.entries(body.figures || {}).forEach(function ([id, fig]) {
      const el = document.getElementById(id);
      if (el && fig && window.Plotly) jobs.push(draw(el, fig));
    });
    // Server-drawn SVG (sparklines) and server-rendered rows: our own markup, no user text.
    Object.entries(body.svgs || {}).forEach(function ([id, svg]) {
      const el = document.getElementById(id);
      if (el && el.innerHTML !== svg) { el.innerHTML = svg; el.classList.remove("spark-empty"); }
    });
    Object.entries(body.html || {}).forEach(function ([id, html]) {
      const el = document.getElementById(id);
      if (el) { el.innerHTML = html; localizeTimes(el); }
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
        const target = typeof url === "function" ? url() : url;
        const resp = await fetch(target, { headers: headers, cache: "no-store",
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

  function startChart(el, url, ms) {
    if (!url) return;
    const tick = poll(function () {
      const after = lastBucketEpoch(el);
      return url + (after === null ? "" : (url.includes("?") ? "&" : "?") + "after=" + after);
    }, ms, function (body) { applyChart(el, body); });
    tick();
  }

  // The report form: the region list follows the country (without JavaScript the form
  // still works: a region of another country is caught and the right list shown).
  function setUpRegions() {
    const country = document.querySelector("select[data-regions]");
    const wrap = document.getElementById("subdivision-field");
    const select = wrap && wrap.querySelector("select");
    if (!country || !select) return;
    country.addEventListener("change", async function () {
      const code = country.value;
      const first = select.options[0];
      select.replaceChildren(first);
      select.value = "";
      wrap.hidden = true;
      if (!code) return;
      try {
        const resp = await fetch(country.dataset.regions.replace("XX", code));
        const body = await resp.json();
        if (country.value !== code) return;
        (body.regions || []).forEach(function (r) {
          const o = document.createElement("option");
          o.value = r[0]; o.textContent = r[1];
          select.appendChild(o);
        });
        wrap.hidden = select.options.length <= 1;
      } catch (e) {
        // Offline: the whole country is still a valid answer.
      }
    });
  }

  async function start() {
    localizeTimes(document);
    setUpFilter();
    setUpRegions();
    const live = document.querySelector("[data-live]");
    const plots = Array.from(document.querySelectorAll("[data-figure]"));
    if (plots.length) {
      await loadPlotly();
      await Promise.all(plots.map(function (el) {
        if (el.dataset.hash) figureHashes[el.id] = el.dataset.hash;
        const fig = readFigure(el);
        return fig ? draw(el, fig) : null;
      }));
    }
    const chart = document.getElementById("chart");
    if (chart && plots.length) {
      showHoverTime(chart);
      const src = document.getElementById("series-source");
      if (src) startChart(chart, src.dataset.url, +src.dataset.pollMs || 5000);
    }
    if (live && live.dataset.live) {
      poll(function () { return liveUrl(live.dataset.live); },
           +live.dataset.pollMs || 15000, applyLive);
    }
    document.body.dataset.ready = "1";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
