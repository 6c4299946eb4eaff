// The explorer page: filters, sorting and the image panel over window.EXPLORER (data
// written by crrg_clip.explorer). No server, no library: it works from file://.
// The state lives in the URL hash (system, region, obs, finding, sort, dir, open), so a
// view can be bookmarked, and a headless browser can open one (tests/test_explorer.py).
(function () {
  "use strict";
  const D = window.EXPLORER;
  const MAX_ROWS = 500; // rows drawn at once; the count says how many match
  const $ = (id) => document.getElementById(id);
  const NO_FINDING = "No Finding";

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k === "class") node.className = v;
      else node.setAttribute(k, v);
    }
    for (const c of children || []) node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    return node;
  }
  function svgEl(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }
  const colour = (ri) => `hsl(${Math.round((ri * 360) / 29)}, 85%, 55%)`;
  const key = (e) => `${e.s}:${e.id}`;

  // --- CE label logic: "hallucinated" = generated positive where the reference is not;
  // "missed" = reference positive where the generated report is not. With no observation
  // chosen, every observation but "No Finding" counts (a finding is a positive observation).
  function obsIndices(obs) {
    if (obs) return [D.observations.indexOf(obs)];
    return D.observations.map((_, i) => i).filter((i) => D.observations[i] !== NO_FINDING);
  }
  const pos = (labels, i) => !!labels && labels[i] === 1;
  function hallucinated(e, idx) { return idx.filter((i) => pos(e.cg, i) && !pos(e.cr, i)); }
  function missed(e, idx) { return idx.filter((i) => pos(e.cr, i) && !pos(e.cg, i)); }

  function readState() {
    const p = new URLSearchParams(location.hash.slice(1));
    return { system: p.get("system") || "", region: p.get("region") || "", obs: p.get("obs") || "",
             finding: p.get("finding") || "", sort: p.get("sort") || "", dir: p.get("dir") || "desc",
             open: p.get("open") || "" };
  }
  function writeState(state) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v && !(k === "dir" && v === "desc")) p.set(k, v);
    history.replaceState(null, "", "#" + p.toString());
  }
  let state = readState();

  function matches(e) {
    if (state.system !== "" && D.systems[e.s].label !== state.system) return false;
    if (state.region !== "") {
      const ri = Number(state.region);
      if (!e.r.some((r) => r[0] === ri && (r[2] || r[9]))) return false;
    }
    const idx = obsIndices(state.obs);
    if (state.finding === "hallucinated") return hallucinated(e, idx).length > 0;
    if (state.finding === "missed") return missed(e, idx).length > 0;
    if (state.obs) return idx.some((i) => pos(e.cg, i) || pos(e.cr, i));
    return true;
  }
  function sorted(list) {
    if (!state.sort) return list;
    const sign = state.dir === "asc" ? 1 : -1;
    return list.slice().sort((a, b) => {
      const x = a.m[state.sort], y = b.m[state.sort];
      if (x == null && y == null) return 0;
      if (x == null) return 1; // missing values last either way
      if (y == null) return -1;
      return sign * (x - y);
    });
  }

  function options(select, pairs) {
    for (const [value, text] of pairs) select.appendChild(el("option", { value: value, text: text }));
  }
  function setupControls() {
    options($("f-system"), [["", "all systems"], ...D.systems.map((s) => [s.label, s.label])]);
    options($("f-region"), [["", "any region"], ...D.regions.map((r, i) => [String(i), r])]);
    options($("f-obs"), [["", "any observation"], ...D.observations.map((o) => [o, o])]);
    options($("f-finding"), [["", "all reports"], ["hallucinated", "hallucinated finding"],
                             ["missed", "missed finding"]]);
    options($("f-sort"), [["", "system, image"], ...D.metrics.map((m) => [m, m])]);
    options($("f-dir"), [["desc", "high first"], ["asc", "low first"]]);
    for (const [id, field] of [["f-system", "system"], ["f-region", "region"], ["f-obs", "obs"],
                               ["f-finding", "finding"], ["f-sort", "sort"], ["f-dir", "dir"]]) {
      $(id).value = state[field];
      $(id).addEventListener("change", () => { state[field] = $(id).value; render(); });
    }
    if (!D.observations.length) { $("f-obs").disabled = true; $("f-finding").disabled = true; }
  }

  function chips(e) {
    const box = el("div");
    const every = D.observations.map((_, i) => i); // colours cover No Finding too
    const hall = new Set(hallucinated(e, every)), miss = new Set(missed(e, every));
    D.observations.forEach((o, i) => {
      if (pos(e.cg, i) || pos(e.cr, i)) {
        const cls = hall.has(i) ? "chip hall" : miss.has(i) ? "chip miss" : "chip ok";
        const tip = hall.has(i) ? "generated only" : miss.has(i) ? "reference only" : "both";
        box.appendChild(el("span", { class: cls, title: tip, text: o }));
      }
    });
    return box;
  }
  const fmt = (v) => (v == null ? "–" : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));

  function render() {
    writeState(state);
    const shown = sorted(D.entries.filter(matches));
    $("count").textContent = `${shown.length} of ${D.entries.length} reports`;
    // the reports first (clamped to a few lines; the detail pane shows them whole), then labels and metrics
    const head = el("tr", {}, [el("th", { text: "image" }), el("th", { text: "system" }),
      el("th", { text: "generated" }), el("th", { text: "reference" }),
      el("th", { text: "CE (generated / reference)" }), ...D.metrics.map((m) => el("th", { text: m }))]);
    const body = el("tbody");
    for (const e of shown.slice(0, MAX_ROWS)) {
      const img = D.images[e.id];
      const row = el("tr", { class: "entry" + (key(e) === state.open ? " open" : ""), "data-key": key(e) }, [
        el("td", {}, [img ? el("img", { class: "thumb", src: img.src, loading: "lazy", alt: e.id }) : "",
                      el("div", { text: e.id })]),
        el("td", { text: D.systems[e.s].label }),
        el("td", { class: "text" }, [el("div", { class: "clamp", text: e.gen, title: e.gen })]),
        el("td", { class: "text" }, [el("div", { class: "clamp", text: e.ref, title: e.ref })]),
        el("td", {}, [chips(e)]),
        ...D.metrics.map((m) => el("td", { text: fmt(e.m[m]) }))]);
      row.addEventListener("click", () => { state.open = key(e); render(); });
      body.appendChild(row);
    }
    const table = el("table", {}, [el("thead", {}, [head]), body]);
    $("list").replaceChildren(table);
    if (shown.length > MAX_ROWS)
      $("list").appendChild(el("p", { text: `showing the first ${MAX_ROWS}; narrow the filters to see the rest` }));
    renderDetail(D.entries.find((e) => key(e) === state.open));
    document.body.dataset.shown = String(shown.length);
  }

  function renderDetail(e) {
    const panel = $("detail");
    if (!e) {
      panel.dataset.open = "";
      panel.replaceChildren(el("p", { class: "empty", text: "Click a report to see its image, regions and sentences." }));
      return;
    }
    panel.dataset.open = key(e);
    const img = D.images[e.id];
    const parts = [el("h2", { text: `${e.id} — ${D.systems[e.s].label}` })];
    if (img) {
      const svg = svgEl("svg", { viewBox: `0 0 ${img.size} ${img.size}`, preserveAspectRatio: "none" });
      const scale = img.size / 100; // stroke and label sizes relative to the image side
      for (const r of e.r) {
        const [ri, detected, selected, , x1, y1, x2, y2] = r;
        if (!detected || x1 == null) continue;
        svg.appendChild(svgEl("rect", { x: x1, y: y1, width: Math.max(0, x2 - x1), height: Math.max(0, y2 - y1),
          stroke: colour(ri), "stroke-width": (selected ? 0.8 : 0.3) * scale,
          "stroke-dasharray": selected ? "" : `${scale} ${scale}`, class: selected ? "sel" : "det" }));
        if (selected) {
          const t = svgEl("text", { x: x1 + 0.5 * scale, y: y1 + 3.2 * scale, fill: colour(ri),
                                    style: `font-size:${3 * scale}px;stroke-width:${0.5 * scale}px` });
          t.textContent = D.regions[ri];
          svg.appendChild(t);
        }
      }
      parts.push(el("div", { id: "viewer" }, [el("img", { src: img.src, alt: e.id }), svg]));
    } else {
      parts.push(el("p", { class: "empty", text: "image not in the cache" }));
    }
    parts.push(el("div", { class: "reports" }, [el("div", {}, [el("b", { text: "generated: " }), e.gen || "—"]),
                                                el("div", {}, [el("b", { text: "reference: " }), e.ref || "—"])]));
    parts.push(el("div", {}, [chips(e)]));
    const metrics = D.metrics.filter((m) => e.m[m] != null).map((m) => `${m} ${fmt(e.m[m])}`).join(" · ");
    if (metrics) parts.push(el("p", { text: metrics }));
    if (D.systems[e.s].regions) {
      const rows = e.r.filter((r) => r[2] || r[9]).map((r) => el("tr", { class: r[2] ? "selected" : "" }, [
        el("td", {}, [el("span", { class: "swatch", style: `background:${colour(r[0])}` }), D.regions[r[0]]]),
        el("td", { text: r[2] ? `selected (${fmt(r[3])})` : r[1] ? `not selected (${fmt(r[3])})` : "not detected" }),
        el("td", { text: r[8] || "—" }), el("td", { text: r[9] || "—" })]));
      parts.push(el("table", { id: "regions" }, [el("thead", {}, [el("tr", {}, [el("th", { text: "region" }),
        el("th", { text: "selection" }), el("th", { text: "generated sentence" }),
        el("th", { text: "reference sentence" })])]), el("tbody", {}, rows)]));
    } else {
      parts.push(el("p", { class: "empty", text: "this system writes whole reports: no regions" }));
    }
    panel.replaceChildren(...parts);
  }

  if (D.note) $("note").textContent = D.note;
  setupControls();
  render();
  document.body.dataset.ready = "1";
})();
