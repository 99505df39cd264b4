// l2r annotate: the page. Plain JavaScript, no library, nothing loaded from the network but the
// local server. The server holds all state (the project store); this page shows it and sends
// the user's actions, one request each, and redraws from what the server acknowledged.
"use strict";

(function () {
  const token = document.querySelector('meta[name="l2r-token"]').content;
  const canvas = document.getElementById("canvas");
  const ctx = canvas.getContext("2d");
  const $ = (id) => document.getElementById(id);

  // ---- server -----------------------------------------------------------------------------
  let inflight = 0;
  function busy(delta) {
    inflight += delta;
    document.body.dataset.busy = inflight > 0 ? "1" : "0";
  }
  function url(path, params) {
    const q = new URLSearchParams(params || {});
    q.set("token", token);
    return path + "?" + q.toString();
  }
  async function api(method, path, body) {
    busy(1);
    try {
      const res = await fetch(path, {
        method,
        headers: { "X-L2R-Token": token, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const doc = await res.json().catch(() => ({ error: res.statusText }));
      if (!res.ok) throw new Error(doc.error || res.statusText);
      return doc;
    } finally {
      busy(-1);
    }
  }
  function loadImage(src, counted) {
    if (counted) busy(1);
    return new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("could not load " + src.split("?")[0]));
      img.src = src;
    }).finally(() => { if (counted) busy(-1); });
  }

  // ---- state ------------------------------------------------------------------------------
  let info = null; // /api/state
  let graph = { revision: -1, nodes: [], edges: [] };
  let pending = null; // { rect, img }
  let tool = "positive";
  let selected = -1; // edge index
  let stroke = null; // points being drawn (image px)
  let roadLine = []; // polyline of the road tool
  const tiles = new Map(); // "z/x/y" -> Image or "loading"
  const overlays = new Map(); // "rev/z/x/y" -> Image, "none" or "loading"
  // view transform: screen = image * scale + offset (CSS pixels)
  let scale = 1, ox = 0, oy = 0;

  function message(text, isError) {
    const m = $("message");
    m.textContent = text || "";
    m.className = isError ? "error" : "";
  }
  function fail(err) {
    message(String(err.message || err), true);
  }

  // ---- geometry ---------------------------------------------------------------------------
  const toImage = (sx, sy) => [(sx - ox) / scale, (sy - oy) / scale];
  const toScreen = (x, y) => [x * scale + ox, y * scale + oy];
  function screenCentre() {
    return toImage(canvas.clientWidth / 2, canvas.clientHeight / 2);
  }
  function viewAt(x, y) {
    const vw = Math.min(info.view_size, info.width), vh = Math.min(info.view_size, info.height);
    const c0 = Math.min(Math.max(Math.round(x - vw / 2), 0), info.width - vw);
    const r0 = Math.min(Math.max(Math.round(y - vh / 2), 0), info.height - vh);
    return [c0, r0, vw, vh];
  }
  function fit() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    scale = Math.min(w / info.width, h / info.height) * 0.95;
    ox = (w - info.width * scale) / 2;
    oy = (h - info.height * scale) / 2;
  }
  function zoomAt(sx, sy, factor) {
    const [x, y] = toImage(sx, sy);
    scale = Math.min(Math.max(scale * factor, 1 / 2 ** (info.levels + 1)), 16);
    ox = sx - x * scale;
    oy = sy - y * scale;
    draw();
  }
  function segDist(p, a, b) {
    const dx = b[0] - a[0], dy = b[1] - a[1];
    const L = dx * dx + dy * dy;
    let t = L > 0 ? ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / L : 0;
    t = Math.max(0, Math.min(1, t));
    return Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
  }
  function nearestEdge(p, maxDist) {
    let best = -1, bestD = maxDist;
    graph.edges.forEach((e, i) => {
      const d = segDist(p, graph.nodes[e[0]], graph.nodes[e[1]]);
      if (d < bestD) { bestD = d; best = i; }
    });
    return best;
  }

  // ---- drawing ----------------------------------------------------------------------------
  function level() {
    const z = Math.floor(Math.log2(1 / scale));
    return Math.max(0, Math.min(info.levels - 1, z));
  }
  function visibleTiles(z) {
    const side = info.tile * 2 ** z;
    const [x0, y0] = toImage(0, 0);
    const [x1, y1] = toImage(canvas.clientWidth, canvas.clientHeight);
    const out = [];
    const tx0 = Math.max(0, Math.floor(x0 / side)), ty0 = Math.max(0, Math.floor(y0 / side));
    const tx1 = Math.min(Math.ceil(info.width / side) - 1, Math.floor(x1 / side));
    const ty1 = Math.min(Math.ceil(info.height / side) - 1, Math.floor(y1 / side));
    for (let ty = ty0; ty <= ty1; ty++) for (let tx = tx0; tx <= tx1; tx++) out.push([tx, ty, side]);
    return out;
  }
  function tileImage(z, tx, ty) {
    const key = z + "/" + tx + "/" + ty;
    const t = tiles.get(key);
    if (t === undefined) {
      tiles.set(key, "loading");
      loadImage(url("api/tile/" + key + ".png"))
        .then((img) => { tiles.set(key, img); draw(); })
        .catch(() => tiles.delete(key));
      return null;
    }
    return t === "loading" ? null : t;
  }
  function overlayImage(z, tx, ty) {
    const key = info.revision + "/" + z + "/" + tx + "/" + ty;
    const t = overlays.get(key);
    if (t === undefined) {
      overlays.set(key, "loading");
      fetch(url("api/overlay/" + z + "/" + tx + "/" + ty + ".png", { rev: info.revision }))
        .then((res) => (res.status === 204 ? "none" : res.blob()))
        .then((b) => (b === "none" ? "none" : createImageBitmap(b)))
        .then((img) => { overlays.set(key, img); draw(); })
        .catch(() => overlays.delete(key));
      return null;
    }
    return t === "loading" || t === "none" ? null : t;
  }
  function drawRasterLayer(z, getter) {
    for (const [tx, ty, side] of visibleTiles(z)) {
      const img = getter(z, tx, ty);
      if (!img) continue;
      const [sx, sy] = toScreen(tx * side, ty * side);
      const w = Math.min(side, info.width - tx * side), h = Math.min(side, info.height - ty * side);
      ctx.drawImage(img, sx, sy, w * scale, h * scale);
    }
  }
  function polyline(points, color, width, dash) {
    if (points.length === 0) return;
    ctx.beginPath();
    ctx.setLineDash(dash || []);
    ctx.strokeStyle = color;
    ctx.lineWidth = width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    const [x0, y0] = toScreen(points[0][0], points[0][1]);
    ctx.moveTo(x0, y0);
    for (const p of points.slice(1)) ctx.lineTo(...toScreen(p[0], p[1]));
    if (points.length === 1) ctx.lineTo(x0 + 0.1, y0);
    ctx.stroke();
    ctx.setLineDash([]);
  }
  function draw() {
    if (!info) return;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.imageSmoothingEnabled = scale < 1;
    const z = level();
    if (z + 1 < info.levels) drawRasterLayer(z + 1, (a, b, c) => tiles.get(a + "/" + b + "/" + c) instanceof Image ? tiles.get(a + "/" + b + "/" + c) : null);
    drawRasterLayer(z, tileImage);
    if (z <= info.max_overlay_level) drawRasterLayer(z, overlayImage);
    if (pending && pending.img) {
      const [c0, r0, pw, ph] = pending.rect;
      const [sx, sy] = toScreen(c0, r0);
      ctx.drawImage(pending.img, sx, sy, pw * scale, ph * scale);
    }
    graph.edges.forEach((e, i) => {
      if (i !== selected) polyline([graph.nodes[e[0]], graph.nodes[e[1]]], "#ff3b3b", 2.5);
    });
    ctx.fillStyle = "#ffffff";
    for (const n of graph.nodes) {
      const [sx, sy] = toScreen(n[0], n[1]);
      ctx.fillRect(sx - 1.5, sy - 1.5, 3, 3);
    }
    if (selected >= 0 && selected < graph.edges.length) {
      const e = graph.edges[selected];
      polyline([graph.nodes[e[0]], graph.nodes[e[1]]], "#ffee00", 6);
    }
    for (const p of info.prompts) {
      polyline(p.points, p.positive ? "#39ff6a" : "#ff4fd8", p.kind === "click" ? 9 : 3);
    }
    if (stroke) polyline(stroke.points, stroke.positive ? "#39ff6a" : "#ff4fd8", 3);
    if (roadLine.length) polyline(roadLine, "#ffffff", 3, [6, 4]);
    // the view the next prediction runs on
    const [c0, r0, vw, vh] = viewAt(...screenCentre());
    const [sx, sy] = toScreen(c0, r0);
    ctx.setLineDash([8, 6]);
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    ctx.lineWidth = 1.5;
    ctx.strokeRect(sx, sy, vw * scale, vh * scale);
    ctx.setLineDash([]);
  }

  // ---- refreshing from the server ---------------------------------------------------------
  async function refresh() {
    const prev = info ? info.revision : -1;
    info = await api("GET", "api/state");
    $("image-name").textContent = info.image + "  " + info.width + " x " + info.height + " px";
    $("model").textContent = "model: " + info.model;
    $("model").title = info.model_description || "";
    $("btn-undo").disabled = !info.can_undo;
    $("btn-redo").disabled = !info.can_redo;
    $("btn-accept").disabled = !info.pending;
    $("saved").textContent = "saved (revision " + info.revision + ", " + info.prompts.length + " prompts)";
    $("saved").className = "ok";
    if (info.revision !== prev) {
      for (const k of overlays.keys()) if (!k.startsWith(info.revision + "/")) overlays.delete(k);
      if (info.graph_revision !== graph.revision) { // the mask changed: fetch the new graph
        graph = await api("GET", "api/graph");
        selected = -1;
      }
      document.body.dataset.graphEdges = String(graph.edges.length);
      document.body.dataset.graphRevision = String(graph.revision);
      if (info.pending) {
        const img = await loadImage(url("api/pending.png", { rev: info.revision }), true);
        pending = { rect: info.pending.rect, img };
      } else {
        pending = null;
      }
      document.body.dataset.pending = pending ? "1" : "0";
      updateSelection();
    }
    document.body.dataset.revision = String(info.revision);
    draw();
  }

  // ---- actions ----------------------------------------------------------------------------
  async function run(label, fn) {
    message(label + "...");
    try {
      const out = await fn();
      message("");
      return out;
    } catch (err) {
      fail(err);
      await refresh().catch(() => {});
      return null;
    }
  }
  async function predictAt(x, y, started) {
    const t0 = started || performance.now();
    const r = await api("POST", "api/predict", { x, y });
    await refresh();
    const ms = performance.now() - t0;
    window.l2rLastRoundTrip = { total_ms: ms, server: r.timings };
    window.l2rRounds = (window.l2rRounds || 0) + 1;
    $("latency").textContent = "round trip " + ms.toFixed(0) + " ms (model " + r.timings.model_ms.toFixed(0) + " ms)";
    return r;
  }
  function predictView() {
    return run("predicting", () => predictAt(...screenCentre()));
  }
  function addPrompt(kind, points, positive) {
    return run("saving prompt", async () => {
      const t0 = performance.now();
      await api("POST", "api/prompts", { kind, points, positive });
      // the round runs on the view on screen, or on the prompt when it lies outside that view
      const [c0, r0, vw, vh] = viewAt(...screenCentre());
      const cx = points.reduce((s, p) => s + p[0], 0) / points.length;
      const cy = points.reduce((s, p) => s + p[1], 0) / points.length;
      const inside = cx >= c0 && cx <= c0 + vw && cy >= r0 && cy <= r0 + vh;
      const [x, y] = inside ? screenCentre() : [cx, cy];
      return predictAt(x, y, t0);
    });
  }
  function accept() {
    return run("accepting", async () => { await api("POST", "api/accept"); await refresh(); });
  }
  function drawRoad() {
    if (roadLine.length < 2) { roadLine = []; draw(); return; }
    const points = roadLine;
    roadLine = [];
    return run("saving road", async () => { await api("POST", "api/roads", { points }); await refresh(); });
  }
  function deleteSelected() {
    if (selected < 0) return;
    const edge = selected;
    selected = -1;
    updateSelection();
    return run("deleting edge", async () => {
      await api("POST", "api/edges/delete", { edge, revision: graph.revision });
      await refresh();
    });
  }
  function undo() { return run("undo", async () => { const r = await api("POST", "api/undo"); await refresh(); if (r.undone === "prompt" && pending) await predictAt(pending.rect[0] + pending.rect[2] / 2, pending.rect[1] + pending.rect[3] / 2); }); }
  function redo() { return run("redo", async () => { const r = await api("POST", "api/redo"); await refresh(); if (r.redone === "prompt" && pending) await predictAt(pending.rect[0] + pending.rect[2] / 2, pending.rect[1] + pending.rect[3] / 2); }); }
  function exportProject() {
    const fmt = $("export-format").value;
    return run("exporting", async () => {
      busy(1);
      try {
        const res = await fetch(url("api/export", { format: fmt }));
        if (!res.ok) throw new Error((await res.json().catch(() => ({}))).error || res.statusText);
        const where = res.headers.get("X-L2R-Path");
        const blob = await res.blob();
        const name = (res.headers.get("Content-Disposition") || "").split('filename="')[1] || "export";
        const a = document.createElement("a");
        a.href = URL.createObjectURL(blob);
        a.download = name.replace(/"$/, "");
        document.body.appendChild(a);
        a.click();
        a.remove();
        document.body.dataset.exported = where || "";
        message("exported to " + where);
      } finally {
        busy(-1);
      }
    });
  }
  function updateSelection() {
    $("btn-delete").disabled = selected < 0;
    document.body.dataset.selected = String(selected);
    draw();
  }
  function setTool(name) {
    tool = name;
    roadLine = [];
    for (const b of document.querySelectorAll("[data-tool]")) b.classList.toggle("active", b.dataset.tool === name);
    canvas.style.cursor = name === "pan" ? "grab" : name === "select" ? "pointer" : "crosshair";
    draw();
  }

  // ---- pointer input (mouse, pen and touch alike) -----------------------------------------
  const pointers = new Map();
  let drag = null; // { kind: "pan" | "stroke" | "pinch", ... }
  function local(ev) {
    const r = canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }
  canvas.addEventListener("pointerdown", (ev) => {
    canvas.focus();
    canvas.setPointerCapture(ev.pointerId);
    pointers.set(ev.pointerId, local(ev));
    if (pointers.size === 2) { // two fingers: pinch zoom and pan, cancel any stroke
      stroke = null;
      const [a, b] = [...pointers.values()];
      drag = { kind: "pinch", dist: Math.hypot(a[0] - b[0], a[1] - b[1]), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
      return;
    }
    const [sx, sy] = local(ev);
    if (tool === "pan" || ev.button === 1 || ev.button === 2) {
      drag = { kind: "pan", last: [sx, sy] };
      return;
    }
    const p = toImage(sx, sy);
    if (tool === "positive" || tool === "negative") {
      stroke = { points: [p], positive: tool === "positive", screen: [[sx, sy]] };
      drag = { kind: "stroke" };
    } else if (tool === "road") {
      roadLine.push(p);
      draw();
    } else if (tool === "select") {
      selected = nearestEdge(p, 10 / scale);
      updateSelection();
    }
  });
  canvas.addEventListener("pointermove", (ev) => {
    if (!pointers.has(ev.pointerId)) return;
    pointers.set(ev.pointerId, local(ev));
    if (!drag) return;
    if (drag.kind === "pinch" && pointers.size >= 2) {
      const [a, b] = [...pointers.values()];
      const dist = Math.hypot(a[0] - b[0], a[1] - b[1]);
      const mid = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
      ox += mid[0] - drag.mid[0];
      oy += mid[1] - drag.mid[1];
      zoomAt(mid[0], mid[1], dist / Math.max(drag.dist, 1));
      drag.dist = dist;
      drag.mid = mid;
    } else if (drag.kind === "pan") {
      const [sx, sy] = local(ev);
      ox += sx - drag.last[0];
      oy += sy - drag.last[1];
      drag.last = [sx, sy];
      draw();
    } else if (drag.kind === "stroke" && stroke) {
      const [sx, sy] = local(ev);
      const last = stroke.screen[stroke.screen.length - 1];
      if (Math.hypot(sx - last[0], sy - last[1]) >= 3) {
        stroke.screen.push([sx, sy]);
        stroke.points.push(toImage(sx, sy));
        draw();
      }
    }
  });
  function pointerEnd(ev) {
    pointers.delete(ev.pointerId);
    if (drag && drag.kind === "stroke" && stroke) {
      const s = stroke;
      stroke = null;
      const span = Math.max(...s.screen.map((q) => Math.hypot(q[0] - s.screen[0][0], q[1] - s.screen[0][1])));
      const inside = (p) => p[0] >= 0 && p[1] >= 0 && p[0] <= info.width && p[1] <= info.height;
      const pts = s.points.filter(inside);
      if (pts.length === 0) { draw(); }
      else if (span < 6 || pts.length < 2) addPrompt("click", [pts[0]], s.positive);
      else addPrompt("scribble", pts, s.positive);
    }
    if (pointers.size === 0) drag = null;
  }
  canvas.addEventListener("pointerup", pointerEnd);
  canvas.addEventListener("pointercancel", (ev) => { stroke = null; pointerEnd(ev); draw(); });
  canvas.addEventListener("dblclick", (ev) => {
    if (tool === "road") { ev.preventDefault(); roadLine.pop(); drawRoad(); }
  });
  canvas.addEventListener("contextmenu", (ev) => ev.preventDefault());
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const [sx, sy] = local(ev);
    zoomAt(sx, sy, Math.exp(-ev.deltaY * 0.0015));
  }, { passive: false });
  window.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLSelectElement) return;
    const k = ev.key;
    if ((ev.ctrlKey || ev.metaKey) && k.toLowerCase() === "z") { ev.preventDefault(); ev.shiftKey ? redo() : undo(); }
    else if ((ev.ctrlKey || ev.metaKey) && k.toLowerCase() === "y") { ev.preventDefault(); redo(); }
    else if (k === "Delete" || k === "Backspace") { ev.preventDefault(); deleteSelected(); }
    else if (k === "Enter") drawRoad();
    else if (k === "Escape") { roadLine = []; stroke = null; selected = -1; updateSelection(); }
    else if (k === "p" || k === "P") predictView();
    else if (k === "a" || k === "A") accept();
    else if ("12345".includes(k) && k.length === 1) setTool(["pan", "positive", "negative", "road", "select"][+k - 1]);
  });
  window.addEventListener("resize", draw);

  // ---- buttons ----------------------------------------------------------------------------
  for (const b of document.querySelectorAll("[data-tool]")) b.addEventListener("click", () => setTool(b.dataset.tool));
  $("btn-predict").addEventListener("click", predictView);
  $("btn-accept").addEventListener("click", accept);
  $("btn-delete").addEventListener("click", deleteSelected);
  $("btn-undo").addEventListener("click", undo);
  $("btn-redo").addEventListener("click", redo);
  $("btn-export").addEventListener("click", exportProject);

  // for tests and benchmarks: the image <-> screen transform and a way to set the view
  window.l2r = {
    toScreen, toImage,
    setView(x, y, s) { scale = s; ox = canvas.clientWidth / 2 - x * s; oy = canvas.clientHeight / 2 - y * s; draw(); },
    refresh, predictView,
    graph: () => graph,
    tilesLoaded: () => info !== null && visibleTiles(level()).every(([tx, ty]) => tiles.get(level() + "/" + tx + "/" + ty) instanceof Image),
  };

  refresh()
    .then(() => { fit(); setTool("positive"); document.body.dataset.ready = "1"; })
    .catch(fail);
})();
