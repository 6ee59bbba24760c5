// switchyard presets console: list, view, edit, create and delete presets, their version
// history, and a preview of what a preset would pick now. Uses the admin routes
// (/admin/routing*), so it needs the admin token (the dashboard's). No dependencies.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem("switchyard-token") || "";
  let selected = null;

  async function call(method, path, body) {
    const headers = {};
    if (token()) headers.Authorization = "Bearer " + token();
    const res = await fetch(path, { method, headers, body, cache: "no-store" });
    let data = null;
    try { data = await res.json(); } catch (_) { /* an empty or non-JSON body */ }
    return { ok: res.ok, status: res.status, data };
  }

  function message(text, kind) {
    const node = $("preset-message");
    node.textContent = text;
    node.className = "message " + (kind || "");
    node.dataset.kind = kind || "";
  }

  function item(p) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "link" + (p.name === selected ? " selected" : "");
    button.dataset.preset = p.name;
    button.textContent = p.model;
    button.addEventListener("click", () => select(p));
    const note = document.createElement("span");
    note.className = "meta";
    note.textContent = " " + (p.description || p.models.join(" → "));
    li.append(button, note);
    return li;
  }

  async function load() {
    const r = await call("GET", "/admin/routing");
    const note = $("presets-note");
    if (r.status === 401) {
      note.textContent = (r.data && r.data.error && r.data.error.message) || "the admin token is needed";
      $("presets-editor").hidden = true;
      return;
    }
    if (!r.ok) { note.textContent = "presets unavailable (HTTP " + r.status + ")"; return; }
    note.textContent = "";
    $("presets-editor").hidden = false;
    $("presets-version").textContent = "version " + r.data.version;
    $("presets-console").dataset.version = String(r.data.version);
    $("preset-list").replaceChildren(...r.data.data.map(item));
    if (selected) {
      const current = r.data.data.find((p) => p.name === selected);
      if (current && !$("preset-text").dataset.dirty) $("preset-text").value = current.text;
    }
    const h = await call("GET", "/admin/routing/history");
    if (h.ok) {
      $("preset-history").replaceChildren(...h.data.data.slice(0, 20).map((v) => {
        const li = document.createElement("li");
        li.textContent = "v" + v.version + "  " + new Date(v.at_unix_ms).toLocaleTimeString([], { hour12: false }) +
          "  " + v.trigger + "  (" + Object.keys(v.presets).length + " presets)";
        return li;
      }));
    }
  }

  function select(p) {
    selected = p.name;
    $("preset-name").value = p.name;
    $("preset-text").value = p.text;
    delete $("preset-text").dataset.dirty;
    $("preset-preview-out").textContent = "";
    message("", "");
    load();
  }

  async function save() {
    const name = $("preset-name").value.trim();
    if (!name) { message("give the preset a name", "error"); return; }
    const r = await call("PUT", "/admin/routing/" + encodeURIComponent(name), $("preset-text").value);
    if (r.ok) {
      selected = name;
      delete $("preset-text").dataset.dirty;
      message("saved: presets version " + r.data.version + "; the next request to @preset/" + name + " routes by it", "ok");
    } else {
      message((r.data && r.data.error && r.data.error.message) || "HTTP " + r.status, "error");
    }
    await load();
  }

  async function remove() {
    const name = $("preset-name").value.trim();
    if (!name) return;
    const r = await call("DELETE", "/admin/routing/" + encodeURIComponent(name));
    if (r.ok) {
      selected = null;
      $("preset-name").value = "";
      $("preset-text").value = "";
      message("deleted " + name + ": presets version " + r.data.version, "ok");
    } else {
      message((r.data && r.data.error && r.data.error.message) || "HTTP " + r.status, "error");
    }
    await load();
  }

  function create() {
    selected = null;
    $("preset-name").value = "new-preset";
    $("preset-text").value = 'name = "new-preset"\nmodels = ["auto"]\nroute = { max_latency_ms = 1000, latency_percentile = 95, prefer = "cost" }\n';
    $("preset-text").dataset.dirty = "1";
    message("edit, then Save", "");
  }

  async function preview() {
    const name = $("preset-name").value.trim();
    const out = $("preset-preview-out");
    const r = await call("POST", "/admin/routing/" + encodeURIComponent(name) + "/preview");
    if (!r.ok) {
      out.textContent = (r.data && r.data.error && r.data.error.message) || "HTTP " + r.status;
      out.dataset.pick = "";
      return;
    }
    const d = r.data.decision;
    const others = (d.candidates || []).slice(1).map((c) =>
      c.endpoint + (c.feasible ? " (feasible, ranked " + c.rank + ")" : " (infeasible: " + (c.missed.join(", ") || "ranked lower") + ")"));
    const removed = (d.removed_by_constraints || []).map((x) => x.endpoint + " (removed by " + x.constraint + ")");
    out.textContent = "today @preset/" + name + " would pick " + r.data.would_pick + ". " +
      (d.why ? d.why + ". " : "") + [...others, ...removed].join("; ");
    out.dataset.pick = r.data.would_pick || "";
  }

  $("preset-text").addEventListener("input", () => { $("preset-text").dataset.dirty = "1"; });
  $("preset-save").addEventListener("click", save);
  $("preset-delete").addEventListener("click", remove);
  $("preset-new").addEventListener("click", create);
  $("preset-preview").addEventListener("click", preview);
  $("auth-form").addEventListener("submit", () => setTimeout(load, 0));
  load();
  setInterval(load, 10000);
})();
