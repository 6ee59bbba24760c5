// switchyard dashboard: polls /dashboard/data and draws it. No dependencies.
"use strict";

(function () {
  const errors = [];
  function report(message) {
    errors.push(String(message));
    const pre = document.getElementById("errors");
    pre.textContent = errors.join("\n");
    pre.hidden = false;
    document.body.dataset.errors = String(errors.length);
  }
  window.addEventListener("error", (e) => report("error: " + e.message));
  window.addEventListener("unhandledrejection", (e) => report("unhandled rejection: " + e.reason));
  const consoleError = console.error.bind(console);
  console.error = (...args) => { report(args.join(" ")); consoleError(...args); };

  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#58a6ff", "#3fb950", "#f0883e", "#d2a8ff", "#ff7b72", "#e3b341",
    "#79c0ff", "#56d364", "#ffa657", "#bc8cff", "#ffa198", "#f2cc60"];
  const colors = new Map();
  function color(id) {
    if (!colors.has(id)) colors.set(id, PALETTE[colors.size % PALETTE.length]);
    return colors.get(id);
  }

  // The admin token: from the URL fragment (never sent to the server) or the form.
  let token = sessionStorage.getItem("switchyard-token") || "";
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    token = hash.get("token");
    sessionStorage.setItem("switchyard-token", token);
    history.replaceState(null, "", location.pathname);
  }
  document.getElementById("auth-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = document.getElementById("token").value.trim();
    sessionStorage.setItem("switchyard-token", token);
    poll();
  });

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
    return node;
  }
  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }
  const fmt = {
    ms: (v) => (v == null ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + " s" : Math.round(v) + " ms"),
    pct: (v) => (v == null ? "–" : (v * 100).toFixed(1) + "%"),
    usd: (v) => "$" + Number(v).toFixed(Number(v) < 1 ? 6 : 2),
    price: (v) => (v == null ? "–" : Number(v).toFixed(3)),
    time: (ms) => new Date(ms).toLocaleTimeString([], { hour12: false }),
    int: (v) => Number(v).toLocaleString(),
  };

  // One line chart: series = [{id, dashed, points: [[t, v], ...]}].
  function lineChart(node, series, opts) {
    const W = 600, H = 220, L = 46, R = 10, T = 10, B = 24;
    node.replaceChildren();
    const all = series.flatMap((s) => s.points);
    node.dataset.series = String(series.filter((s) => s.points.length > 0).length);
    node.dataset.points = String(all.length);
    if (all.length === 0) {
      const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" });
      t.textContent = "waiting for traffic…";
      node.append(t);
      return;
    }
    const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]), t0 + 1000);
    let ymax = opts.max != null ? opts.max : Math.max(...all.map((p) => p[1]), 1) * 1.1;
    const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      node.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: i ? "grid" : "axis" }));
      const label = svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" });
      label.textContent = opts.label(v);
      node.append(label);
    }
    for (let i = 0; i <= 3; i++) {
      const t = t0 + ((t1 - t0) * i) / 3;
      const label = svg("text", { x: x(t), y: H - 6, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" });
      label.textContent = fmt.time(t);
      node.append(label);
    }
    for (const s of series) {
      if (s.points.length === 0) continue;
      const d = s.points.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(Math.min(p[1], ymax)).toFixed(1)).join(" ");
      const path = svg("path", { d, fill: "none", stroke: color(s.id), "stroke-width": s.dashed ? 1.4 : 2 });
      if (s.dashed) path.setAttribute("stroke-dasharray", "5 4");
      path.dataset.endpoint = s.id;
      node.append(path);
      if (s.points.length === 1) {
        const p = s.points[0];
        node.append(svg("circle", { cx: x(p[0]), cy: y(Math.min(p[1], ymax)), r: 3, fill: color(s.id) }));
      }
    }
  }

  // Timeline rows: [t, attempts, successes, failures, ttft50, ttft99, total50, total99, spend].
  function charts(timeline) {
    const ids = Object.keys(timeline).sort();
    const quantile = (col) => (id) => timeline[id].filter((r) => r[col] != null).map((r) => [r[0], r[col]]);
    const ms = { label: (v) => fmt.ms(v).replace(" ms", "") };
    lineChart(document.getElementById("chart-ttft"),
      ids.flatMap((id) => [{ id, points: quantile(4)(id) }, { id, dashed: true, points: quantile(5)(id) }]), ms);
    lineChart(document.getElementById("chart-total"),
      ids.flatMap((id) => [{ id, points: quantile(6)(id) }, { id, dashed: true, points: quantile(7)(id) }]), ms);
    const success = ids.map((id) => {
      const rows = timeline[id], points = [];
      for (let i = 1; i < rows.length; i++) {
        const ds = rows[i][2] - rows[i - 1][2], df = rows[i][3] - rows[i - 1][3];
        if (ds + df > 0) points.push([rows[i][0], (100 * ds) / (ds + df)]);
      }
      return { id, points };
    });
    lineChart(document.getElementById("chart-success"), success, { max: 100, label: (v) => Math.round(v) });
    // Share: each endpoint's new attempts over all new attempts in the same sampling round.
    const rounds = new Map();
    for (const id of ids) {
      const rows = timeline[id];
      for (let i = 1; i < rows.length; i++) {
        const d = rows[i][1] - rows[i - 1][1];
        const round = rounds.get(rows[i][0]) || new Map();
        round.set(id, d);
        rounds.set(rows[i][0], round);
      }
    }
    const share = ids.map((id) => ({ id, points: [] }));
    for (const [t, round] of [...rounds.entries()].sort((a, b) => a[0] - b[0])) {
      const total = [...round.values()].reduce((a, b) => a + b, 0);
      if (total <= 0) continue;
      share.forEach((s) => s.points.push([t, (100 * (round.get(s.id) || 0)) / total]));
    }
    lineChart(document.getElementById("chart-share"), share, { max: 100, label: (v) => Math.round(v) });
    const legend = document.getElementById("legend");
    legend.replaceChildren(...ids.map((id) => {
      const sw = el("i", { class: "swatch" });
      sw.style.background = color(id);
      return el("span", {}, sw, id);
    }));
  }

  function cards(d) {
    const r = d.requests;
    const items = [
      ["answered", fmt.int(r.answered)], ["failed (502)", fmt.int(r.failed)],
      ["refused (4xx)", fmt.int(r.refused)], ["shed (503)", fmt.int(r.shed)],
      ["over key limits", fmt.int(r.limited)], ["no valid key", fmt.int(r.unauthorized)],
      ["endpoints", `${d.endpoints.length} active / ${d.endpoint_count}`],
      ["spend", fmt.usd(d.endpoints.reduce((a, e) => a + Number(e.spend_usd), 0))],
      // Answered requests per surface (operation), those in use.
      ...Object.entries(r.by_surface || {}).filter(([, c]) => c[0] + c[1] + c[2] > 0)
        .map(([name, c]) => [`${name} answered`, fmt.int(c[0])]),
      // Hedging, once it has done anything: started / won, and what the losers cost.
      ...(r.hedges && r.hedges.started + r.hedges.paused > 0 ? [
        ["hedges won / started", `${fmt.int(r.hedges.won)} / ${fmt.int(r.hedges.started)}`],
        ["hedging waste", fmt.usd(r.hedges.wasted_usd)],
      ] : []),
    ];
    document.getElementById("cards").replaceChildren(...items.map(([k, v]) =>
      el("div", { class: "card" }, el("div", { class: "v" }, v), el("div", { class: "k" }, k))));
  }

  // "0.90 → 0.38 (41 scores)": the sheet's quality and what client feedback taught.
  function quality(q) {
    if (!q) return "–";
    const declared = q.declared == null ? "–" : q.declared.toFixed(2);
    if (q.learned == null) return declared;
    return `${declared} → ${q.learned.toFixed(2)} (${Math.round(q.feedback)} scores)`;
  }

  function endpoints(list) {
    const total = list.reduce((a, e) => a + e.attempts, 0) || 1;
    const q = (w) => (w ? `${fmt.ms(w.p50)} / ${fmt.ms(w.p99)}` : "–");
    const rows = [...list].sort((a, b) => b.attempts - a.attempts).map((e) => {
      const sw = el("i", { class: "swatch" });
      sw.style.background = color(e.id);
      return el("tr", {},
        el("td", {}, sw), el("td", {}, e.id),
        el("td", { class: "num" }, `${fmt.price(e.input_per_mtok)} / ${fmt.price(e.output_per_mtok)}`),
        el("td", { class: "num" }, fmt.int(e.attempts)),
        el("td", { class: "num" }, fmt.pct(e.attempts / total)),
        el("td", { class: "num" }, fmt.pct(e.success_rate)),
        el("td", { class: "num" }, e.in_flight),
        el("td", { class: "num" }, q(e.ttft_5m)),
        el("td", { class: "num" }, q(e.total_5m)),
        el("td", { class: "num" }, fmt.usd(e.spend_usd)),
        el("td", { class: "num" }, quality(e.quality)),
        el("td", {}, ...((e.changes || []).length
          ? e.changes.map((c) => el("div", {}, `${c.stream} ${c.old} → ${c.new}, ${c.seconds_ago} s ago`))
          : ["–"])));
    });
    document.querySelector("#endpoints tbody").replaceChildren(...rows);
  }

  function decisions(list) {
    const rows = list.map((d) => el("tr", {},
      el("td", { class: "num" }, fmt.time(d.at_ms)),
      el("td", {}, d.id), el("td", {}, d.model), el("td", {}, d.client || "–"),
      el("td", {}, d.answered_by || el("span", { class: "fail" }, "none")),
      el("td", {}, ...(d.failures.length ? d.failures.map((f) => el("div", { class: "fail" }, f)) : ["–"])),
      el("td", { class: "why" }, `${d.policy}: ${d.why} (${d.candidates} candidates${d.removed ? `, ${d.removed} removed by constraints` : ""})`)));
    document.querySelector("#decisions tbody").replaceChildren(...rows);
  }

  let lastPrices = null;
  function prices(list, version) {
    document.getElementById("prices-version").textContent = `version ${version}`;
    lastPrices = list;
    const filter = document.getElementById("price-filter").value.trim().toLowerCase();
    const rows = [];
    for (const p of list) {
      for (const m of p.models) {
        if (filter && !(p.provider + "/" + m.model).toLowerCase().includes(filter)) continue;
        rows.push(el("tr", {}, el("td", {}, p.provider), el("td", {}, m.model),
          el("td", { class: "num" }, fmt.price(m.input_per_mtok)), el("td", { class: "num" }, fmt.price(m.output_per_mtok)),
          el("td", { class: "num" }, fmt.price(m.cached_input_per_mtok)), el("td", { class: "num" }, m.quality == null ? "–" : m.quality)));
      }
    }
    document.querySelector("#prices tbody").replaceChildren(...rows);
  }
  document.getElementById("price-filter").addEventListener("input", () => {
    if (lastPrices) prices(lastPrices, document.getElementById("prices-version").textContent.replace("version ", ""));
  });

  let interval = 2000, timer = null;
  async function poll() {
    clearTimeout(timer);
    const status = document.getElementById("status");
    try {
      const res = await fetch("/dashboard/data", { headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
      if (res.status === 401) {
        document.getElementById("auth").hidden = false;
        document.getElementById("main").hidden = true;
        status.textContent = "admin token needed";
        status.className = "status down";
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      const d = await res.json();
      try {
        render(d);
      } catch (e) {
        report("cannot draw the data: " + (e && e.stack ? e.stack : e));
        status.textContent = "cannot draw the data";
        status.className = "status down";
        return;
      }
      status.textContent = "live · " + fmt.time(d.now_ms);
      status.className = "status live";
      document.body.dataset.ready = "1";
    } catch (e) {
      status.textContent = "cannot reach the router (" + e.message + "), retrying";
      status.className = "status down";
    }
    timer = setTimeout(poll, interval);
  }

  function render(d) {
    document.getElementById("auth").hidden = true;
    document.getElementById("main").hidden = false;
    interval = Math.max(500, d.sample_interval_ms || 2000);
    cards(d);
    charts(d.timeline);
    endpoints(d.endpoints);
    decisions(d.decisions);
    prices(d.prices, d.prices_version);
    document.getElementById("meta").textContent = `policy ${d.policy} · prices v${d.prices_version}`;
  }
  poll();
})();
