/* Review viewer: canvas image viewer with detection overlays, decisions, drawing and undo.
 * Vanilla JS, no dependencies. Config comes from <script type="application/json" id="viewer-config">.
 * Image coordinates: pixels, origin at the image's top-left corner. Screen = image * scale + (tx, ty).
 */
(function () {
  "use strict";
  const gettext = window.gettext || ((t) => t);
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));

  var cfgEl = document.getElementById("viewer-config");
  if (!cfgEl) { return; }
  var cfg = JSON.parse(cfgEl.textContent);
  var ZERO = "00000000-0000-0000-0000-000000000000";
  function $(id) { return document.getElementById(id); }

  var canvas = $("viewer-canvas");
  var wrap = $("viewer-wrap");
  var ctx = canvas.getContext("2d");

  var S = {
    data: null, bitmap: null, instances: [], byId: {}, classes: [], classIndex: {},
    scale: 1, tx: 0, ty: 0, cw: 0, ch: 0, dpr: window.devicePixelRatio || 1,
    threshold: 0.5, hidden: {}, showLabels: true, showFill: true,
    visible: [], selected: null, hover: null,
    tool: "select", draft: [], cursor: null, drag: null, vertexDrag: null,
    undo: [], pending: 0, queue: Promise.resolve(), frame: 0,
    brushUm: 2, paint: null, editPoly: null, splitLine: null,
    listSort: { key: "order", dir: 1 }, listFilter: { cls: "", decision: "", agreement: "", minScore: 0 },
    stats: { loadMs: null, firstRenderMs: null, lastRenderMs: null, renders: 0 }
  };
  var t0 = performance.now();

  // ---------------------------------------------------------------- RLE (COCO compressed counts)
  function rleCounts(s) {
    var counts = [], p = 0, m = 0;
    while (p < s.length) {
      var x = 0, k = 0, more = 1, c;
      while (more) {
        c = s.charCodeAt(p) - 48;
        x |= (c & 0x1f) << (5 * k);
        more = c & 0x20; p++; k++;
        if (!more && (c & 0x10)) { x |= -1 << (5 * k); }
      }
      if (m > 2) { x += counts[m - 2]; }
      counts.push(x); m++;
    }
    return counts;
  }

  /* Decode the mask inside the instance's box into a Uint8Array (column-major RLE, h x w image). */
  function decodeCrop(inst) {
    var h = inst.rle.size[0];
    var x0 = Math.max(0, Math.floor(inst.box[0])), y0 = Math.max(0, Math.floor(inst.box[1]));
    var x1 = Math.min(inst.rle.size[1], Math.ceil(inst.box[2])), y1 = Math.min(h, Math.ceil(inst.box[3]));
    var w = Math.max(1, x1 - x0), hh = Math.max(1, y1 - y0);
    var mask = new Uint8Array(w * hh);
    var counts = typeof inst.rle.counts === "string" ? rleCounts(inst.rle.counts) : inst.rle.counts;
    var pos = 0;
    for (var i = 0; i < counts.length; i++) {
      var a = pos, b = pos + counts[i];
      pos = b;
      if (i % 2 === 0) { continue; }
      while (a < b) {
        var col = Math.floor(a / h), row = a - col * h;
        var segEnd = Math.min(b, (col + 1) * h);
        if (col >= x0 && col < x1) {
          var rEnd = row + (segEnd - a);
          for (var r = Math.max(row, y0); r < Math.min(rEnd, y1); r++) { mask[(r - y0) * w + (col - x0)] = 1; }
        }
        a = segEnd;
      }
    }
    inst.ox = x0; inst.oy = y0; inst.mw = w; inst.mh = hh; inst.mask = mask;
  }

  function hexRgb(hex) { return [parseInt(hex.substr(1, 2), 16), parseInt(hex.substr(3, 2), 16), parseInt(hex.substr(5, 2), 16)]; }

  /* A small canvas with the instance's fill (translucent) and outline (opaque) in one colour. */
  function bake(inst, color) {
    var key = color + (S.showFill ? "f" : "o");
    if (inst.bakedKey === key) { return inst.baked; }
    var c = document.createElement("canvas");
    c.width = inst.mw; c.height = inst.mh;
    var cx = c.getContext("2d");
    var id = cx.createImageData(inst.mw, inst.mh);
    var rgb = hexRgb(color), m = inst.mask, w = inst.mw, h = inst.mh, d = id.data, fillA = S.showFill ? 70 : 0;
    for (var y = 0; y < h; y++) {
      for (var x = 0; x < w; x++) {
        var i = y * w + x;
        if (!m[i]) { continue; }
        var edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 || !m[i - 1] || !m[i + 1] || !m[i - w] || !m[i + w];
        var j = i * 4;
        d[j] = rgb[0]; d[j + 1] = rgb[1]; d[j + 2] = rgb[2]; d[j + 3] = edge ? 255 : fillA;
      }
    }
    cx.putImageData(id, 0, 0);
    inst.baked = c; inst.bakedKey = key;
    return c;
  }

  // ---------------------------------------------------------------- helpers
  function effClass(inst) {
    if (inst.adjudication && inst.adjudication.class_name) { return inst.adjudication.class_name; }
    if (inst.mine && inst.mine.class_name) { return inst.mine.class_name; }
    return inst.class_name;
  }
  function colorOf(name) { return (S.classIndex[name] || { color: "#ffffff" }).color; }
  function label(name) { return (cfg.classLabels && cfg.classLabels[name]) || name.replace(/_/g, " "); }
  // Decision and agreement codes of the API, as shown to people.
  var DECISION_TEXT = { accept: gettext("accept"), reject: gettext("reject"), uncertain: gettext("uncertain"),
    undecided: gettext("undecided") };
  var AGREEMENT_TEXT = { agree: gettext("agree"), disagree: gettext("disagree"), single: gettext("one reviewer"),
    none: gettext("none") };
  function decisionText(code) { return DECISION_TEXT[code] || code; }
  function agreementText(code) { return AGREEMENT_TEXT[code] || code; }
  function fmt(v, n) { return v === null || v === undefined ? "–" : Number(v).toFixed(n); }
  function isManual(inst) { return inst.source === "manual"; }

  /* A cell to review: drawn, or scored at or above the reviewer's threshold (the server's
   * portal.review.selectors.is_cell_to_review; the session page counts by the same rule). */
  function toReview(inst) {
    if (isManual(inst) || inst.score === null || inst.score === undefined) { return true; }
    return inst.score >= S.threshold;
  }

  function passes(inst) {
    return !S.hidden[effClass(inst)] && toReview(inst);
  }

  function recomputeVisible() {
    S.visible = S.instances.filter(passes);
    $("visible-count").textContent = String(S.visible.length);
    $("total-count").textContent = String(S.instances.length);
    // a selected cell that leaves the view (hidden class, threshold) stays the place n/p continue from
    if (S.selected && S.visible.indexOf(S.selected) < 0 && S.selected !== S.pinned) { var gone = S.selected; select(null); S.anchor = gone; }
    updateClassCounts(); renderList();
  }

  function updateClassCounts() {
    var counts = {};
    S.visible.forEach(function (inst) { var c = effClass(inst); counts[c] = (counts[c] || 0) + 1; });
    S.classes.forEach(function (c) {
      var el = $("class-count-" + c.name);
      if (el) { el.textContent = String(counts[c.name] || 0); }
    });
  }

  function updateAgreement() {
    var a = { agree: 0, disagree: 0, single: 0, none: 0 }, mine = 0, total = 0;
    S.instances.forEach(function (inst) {
      if (!toReview(inst)) { return; }
      total++;
      a[inst.agreement] = (a[inst.agreement] || 0) + 1;
      if (inst.mine) { mine++; }
    });
    $("agreement").textContent = interpolate(
      gettext("%(agree)s agree, %(disagree)s disagree, %(single)s one reviewer, %(none)s undecided"),
      { agree: a.agree, disagree: a.disagree, single: a.single, none: a.none }, true);
    $("my-progress").textContent = interpolate(gettext("%(mine)s of %(total)s"), { mine: mine, total: total }, true);
    renderList();
  }

  // ---------------------------------------------------------------- view transform
  function resize() {
    var r = wrap.getBoundingClientRect();
    S.dpr = window.devicePixelRatio || 1;
    S.cw = Math.max(100, Math.floor(r.width)); S.ch = Math.max(100, Math.floor(r.height));
    canvas.width = Math.floor(S.cw * S.dpr); canvas.height = Math.floor(S.ch * S.dpr);
    canvas.style.width = S.cw + "px"; canvas.style.height = S.ch + "px";
    requestRender();
  }

  function fit() {
    if (!S.data) { return; }
    var w = S.data.image.width, h = S.data.image.height;
    S.scale = Math.min(S.cw / w, S.ch / h) * 0.98;
    S.tx = (S.cw - w * S.scale) / 2; S.ty = (S.ch - h * S.scale) / 2;
    requestRender();
  }

  function zoomAt(factor, sx, sy) {
    if (sx === undefined) { sx = S.cw / 2; sy = S.ch / 2; }
    var ns = Math.min(64, Math.max(0.01, S.scale * factor));
    var f = ns / S.scale;
    S.tx = sx - (sx - S.tx) * f; S.ty = sy - (sy - S.ty) * f; S.scale = ns;
    requestRender();
  }

  function panBy(dx, dy) { S.tx += dx; S.ty += dy; requestRender(); }
  function toImage(sx, sy) { return [(sx - S.tx) / S.scale, (sy - S.ty) / S.scale]; }
  function toScreen(x, y) { return [x * S.scale + S.tx, y * S.scale + S.ty]; }

  function centerOn(inst, force) {
    var c = toScreen((inst.box[0] + inst.box[2]) / 2, (inst.box[1] + inst.box[3]) / 2);
    var margin = 40;
    if (force || c[0] < margin || c[1] < margin || c[0] > S.cw - margin || c[1] > S.ch - margin) {
      S.tx += S.cw / 2 - c[0]; S.ty += S.ch / 2 - c[1];
    }
  }

  // ---------------------------------------------------------------- rendering
  function requestRender() {
    if (S.frame) { return; }
    S.frame = requestAnimationFrame(function () { S.frame = 0; render(); });
  }

  /* The shortest round length (µm) whose bar is at least 60 screen pixels long. */
  function niceLength(umPerScreenPx) {
    var steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];
    for (var i = 0; i < steps.length; i++) { if (steps[i] / umPerScreenPx >= 60) { return steps[i]; } }
    return steps[steps.length - 1];
  }

  function render() {
    var start = performance.now();
    var dpr = S.dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#20242b";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!S.data) { return; }
    ctx.setTransform(dpr * S.scale, 0, 0, dpr * S.scale, dpr * S.tx, dpr * S.ty);
    if (S.bitmap) {
      ctx.imageSmoothingEnabled = S.scale < 2;
      ctx.imageSmoothingQuality = "low";
      // the preview is smaller than the image: stretch it over the image's pixel grid
      ctx.drawImage(S.bitmap, 0, 0, S.data.image.width, S.data.image.height);
    }
    ctx.imageSmoothingEnabled = false;
    var v0 = toImage(0, 0), v1 = toImage(S.cw, S.ch);
    var onScreen = [];
    for (var i = 0; i < S.visible.length; i++) {
      var inst = S.visible[i], b = inst.box;
      if (b[2] < v0[0] || b[0] > v1[0] || b[3] < v0[1] || b[1] > v1[1]) { continue; }
      onScreen.push(inst);
      var color = colorOf(effClass(inst));
      if (isManual(inst) && inst.polygon) {
        tracePolygon(inst.polygon);
        if (S.showFill) { ctx.globalAlpha = 0.28; ctx.fillStyle = color; ctx.fill(); ctx.globalAlpha = 1; }
        ctx.lineWidth = 2 / S.scale; ctx.strokeStyle = color; ctx.setLineDash([6 / S.scale, 3 / S.scale]);
        ctx.stroke(); ctx.setLineDash([]);
      } else if (S.paint && S.paint.inst === inst) {
        ctx.drawImage(paintCanvas(color), S.paint.ox, S.paint.oy);
      } else {
        if (!inst.mask) { decodeCrop(inst); }
        ctx.globalAlpha = inst.mine && inst.mine.verdict === "reject" ? 0.45 : 1;
        ctx.drawImage(bake(inst, color), inst.ox, inst.oy);
        ctx.globalAlpha = 1;
      }
    }
    // screen-space overlays: verdict badges, labels, selection, draft, scale bar
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = "12px system-ui, sans-serif";  // i18n: not shown
    ctx.textBaseline = "bottom";
    for (var k = 0; k < onScreen.length; k++) { drawMarks(onScreen[k]); }
    if (S.showLabels) { drawLabels(onScreen); }
    if (S.hover && S.hover !== S.selected && passes(S.hover)) { drawBox(S.hover, "#ffffff", 1, [4, 3]); }
    if (S.selected) {
      drawBox(S.selected, "#000000", 4, []); drawBox(S.selected, "#ffd400", 2, []);
      var handles = editHandles();
      if (S.tool === "edit" && handles) { traceScreenPolygon(handles, "#ffd400"); drawHandles(handles); }
      if ((S.tool === "brush" || S.tool === "eraser") && S.cursor) { drawBrushCursor(); }
    }
    drawDraft();
    if (S.splitLine) {
      var l0 = toScreen(S.splitLine[0][0], S.splitLine[0][1]), l1 = toScreen(S.splitLine[1][0], S.splitLine[1][1]);
      ctx.beginPath(); ctx.moveTo(l0[0], l0[1]); ctx.lineTo(l1[0], l1[1]);
      ctx.strokeStyle = "#ffd400"; ctx.lineWidth = 2; ctx.setLineDash([6, 4]); ctx.stroke(); ctx.setLineDash([]);
    }
    drawScaleBar();
    var ms = performance.now() - start;
    S.stats.lastRenderMs = ms; S.stats.renders++;
    canvas.setAttribute("data-render-ms", ms.toFixed(2));
    $("onscreen-count").textContent = String(onScreen.length);
  }

  function tracePolygon(pts) {
    ctx.beginPath();
    for (var i = 0; i < pts.length; i++) { if (i === 0) { ctx.moveTo(pts[i][0], pts[i][1]); } else { ctx.lineTo(pts[i][0], pts[i][1]); } }
    ctx.closePath();
  }

  function drawBox(inst, color, width, dash) {
    var a = toScreen(inst.box[0], inst.box[1]), b = toScreen(inst.box[2], inst.box[3]);
    ctx.lineWidth = width; ctx.strokeStyle = color; ctx.setLineDash(dash);
    ctx.strokeRect(a[0] - 3, a[1] - 3, b[0] - a[0] + 6, b[1] - a[1] + 6);
    ctx.setLineDash([]);
  }

  var VERDICT_COLORS = { accept: "#1f9d3a", reject: "#d0021b", uncertain: "#f5a623" };
  function drawMarks(inst) {
    var a = toScreen(inst.box[0], inst.box[1]), b = toScreen(inst.box[2], inst.box[3]);
    var wpx = b[0] - a[0];
    var verdict = inst.mine ? inst.mine.verdict : null;
    if (verdict) {
      var r = wpx > 24 ? 7 : 3.5;
      ctx.beginPath(); ctx.arc(b[0], a[1], r, 0, 2 * Math.PI);
      ctx.fillStyle = VERDICT_COLORS[verdict]; ctx.fill();
      ctx.lineWidth = 1; ctx.strokeStyle = "#000"; ctx.stroke();
      if (r > 5) {
        ctx.fillStyle = "#fff"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
        ctx.fillText(verdict === "accept" ? "✓" : verdict === "reject" ? "✕" : "?", b[0], a[1] + 0.5);
        ctx.textAlign = "start"; ctx.textBaseline = "bottom";
      }
      if (verdict === "reject" && wpx > 12) {
        ctx.beginPath(); ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.moveTo(b[0], a[1]); ctx.lineTo(a[0], b[1]);
        ctx.strokeStyle = "rgba(208,2,27,0.8)"; ctx.lineWidth = 1.5; ctx.stroke();
      }
    }
  }

  /* Labels that never cover each other: each tries a few places around its cell (above, below, right,
   * left); a label with no free place is counted into the label it collides with ("+n"), so stacked
   * duplicates at low thresholds read as one label with a count. Highest scores are placed first. */
  var LABEL_WIDTHS = {};
  function drawLabels(onScreen) {
    var items = onScreen.filter(function (inst) {
      var a = toScreen(inst.box[0], inst.box[1]), b = toScreen(inst.box[2], inst.box[3]);
      return b[0] - a[0] >= 18;
    }).sort(function (p, q) { return (q.score === null ? 2 : q.score) - (p.score === null ? 2 : p.score); });
    var placed = [], grid = {}, G = 64;  // placed labels, bucketed by 64 px screen cells
    function near(r) {
      var out = [];
      for (var gx = Math.floor(r.x / G); gx <= Math.floor((r.x + r.w) / G); gx++) {
        for (var gy = Math.floor(r.y / G); gy <= Math.floor((r.y + r.h) / G); gy++) {
          var b = grid[gx + ":" + gy];
          if (b) { out.push.apply(out, b); }
        }
      }
      return out;
    }
    function keep(p) {
      placed.push(p);
      for (var gx = Math.floor(p.x / G); gx <= Math.floor((p.x + p.w) / G); gx++) {
        for (var gy = Math.floor(p.y / G); gy <= Math.floor((p.y + p.h) / G); gy++) {
          (grid[gx + ":" + gy] = grid[gx + ":" + gy] || []).push(p);
        }
      }
    }
    items.forEach(function (inst) {
      var a = toScreen(inst.box[0], inst.box[1]), b = toScreen(inst.box[2], inst.box[3]);
      var txt = label(effClass(inst)) + (inst.score !== null && inst.score !== undefined ? " " + inst.score.toFixed(2) : " " + gettext("(drawn)"));
      var w = (LABEL_WIDTHS[txt] || (LABEL_WIDTHS[txt] = ctx.measureText(txt).width)) + 6, h = 15;
      var spots = [[a[0], a[1] - 16], [a[0], b[1] + 1], [b[0] + 2, a[1]], [a[0] - w - 2, a[1]], [a[0], a[1] - 32], [a[0], b[1] + 17]];
      var hitLabel = null;
      for (var i = 0; i < spots.length; i++) {
        var r = { x: spots[i][0], y: spots[i][1], w: w, h: h };
        var clash = null, others = near(r);
        for (var j = 0; j < others.length; j++) {
          var o = others[j];
          if (r.x < o.x + o.w && o.x < r.x + r.w && r.y < o.y + o.h && o.y < r.y + r.h) { clash = o; break; }
        }
        if (!clash) { keep({ x: r.x, y: r.y, w: w, h: h, txt: txt, extra: 0, inst: inst }); return; }
        if (!hitLabel) { hitLabel = clash; }
      }
      hitLabel.extra++;
    });
    S.labelsPlaced = placed.length;
    placed.forEach(function (p) {
      var txt = p.txt + (p.extra ? " +" + p.extra : "");
      var w = Math.max(p.w, ctx.measureText(txt).width + 6);
      ctx.fillStyle = "rgba(0,0,0,0.78)"; ctx.fillRect(p.x, p.y, w, p.h);
      ctx.fillStyle = "#fff"; ctx.textAlign = "start"; ctx.textBaseline = "bottom"; ctx.fillText(txt, p.x + 3, p.y + p.h - 2);
    });
    canvas.setAttribute("data-labels", String(placed.length));
  }

  function drawHandles(pts) {
    ctx.fillStyle = "#fff"; ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
    for (var i = 0; i < pts.length; i++) {
      var p = toScreen(pts[i][0], pts[i][1]);
      ctx.fillRect(p[0] - 4, p[1] - 4, 8, 8); ctx.strokeRect(p[0] - 4, p[1] - 4, 8, 8);
    }
  }

  function drawDraft() {
    if (S.tool === "circle" && S.cursor) {
      var rpx = circleRadiusPx() * S.scale;
      ctx.beginPath(); ctx.arc(S.cursor[0], S.cursor[1], rpx, 0, 2 * Math.PI);
      ctx.strokeStyle = "#ffd400"; ctx.lineWidth = 1.5; ctx.setLineDash([4, 3]); ctx.stroke(); ctx.setLineDash([]);
    }
    if (S.tool !== "polygon" || !S.draft.length) { return; }
    ctx.beginPath();
    S.draft.forEach(function (p, i) { var s = toScreen(p[0], p[1]); if (i === 0) { ctx.moveTo(s[0], s[1]); } else { ctx.lineTo(s[0], s[1]); } });
    if (S.cursor) { ctx.lineTo(S.cursor[0], S.cursor[1]); }
    ctx.strokeStyle = "#ffd400"; ctx.lineWidth = 2; ctx.stroke();
    drawHandles(S.draft);
  }

  function drawScaleBar() {
    var um = S.data.image.um_per_px;
    var el = $("scale-bar-label");
    if (!um) { el.textContent = gettext("no pixel size"); return; }
    var len = niceLength(um / S.scale);
    var px = len / um * S.scale;
    var x = 16, y = S.ch - 18;
    ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(x - 6, y - 22, px + 12, 30);
    ctx.fillStyle = "#fff"; ctx.fillRect(x, y, px, 4);
    ctx.textAlign = "center"; ctx.fillText(len + " µm", x + px / 2, y - 3); ctx.textAlign = "start";
    el.textContent = len + " µm";
  }

  // ---------------------------------------------------------------- hit testing
  function pointInPolygon(x, y, pts) {
    var inside = false;
    for (var i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      var xi = pts[i][0], yi = pts[i][1], xj = pts[j][0], yj = pts[j][1];
      if (((yi > y) !== (yj > y)) && (x < (xj - xi) * (y - yi) / (yj - yi) + xi)) { inside = !inside; }
    }
    return inside;
  }

  function hit(sx, sy) {
    var p = toImage(sx, sy), best = null, bestArea = Infinity;
    for (var i = 0; i < S.visible.length; i++) {
      var inst = S.visible[i], b = inst.box;
      if (p[0] < b[0] || p[0] > b[2] || p[1] < b[1] || p[1] > b[3]) { continue; }
      var inside;
      if (isManual(inst) && inst.polygon) { inside = pointInPolygon(p[0], p[1], inst.polygon); }
      else {
        if (!inst.mask) { decodeCrop(inst); }
        var mx = Math.floor(p[0]) - inst.ox, my = Math.floor(p[1]) - inst.oy;
        inside = mx >= 0 && my >= 0 && mx < inst.mw && my < inst.mh && inst.mask[my * inst.mw + mx] === 1;
      }
      if (inside && inst.area_px < bestArea) { best = inst; bestArea = inst.area_px; }
    }
    return best;
  }

  // ---------------------------------------------------------------- panels
  function describe(inst) {
    var parts = [label(effClass(inst))];
    if (inst.score !== null && inst.score !== undefined) { parts.push(interpolate(gettext("score %(score)s"), { score: inst.score.toFixed(2) }, true)); }
    parts.push("Ø " + fmt(inst.diameter_um, 1) + " µm", interpolate(gettext("area %(area)s µm²"), { area: fmt(inst.area_um2, 1) }, true));
    return parts.join(" · ");
  }

  function showHover(inst) {
    $("hover-info").textContent = inst ? describe(inst) : gettext("Point at a cell to see its diameter and area.");
  }

  function select(inst, opts) {
    if (S.paint && S.paint.inst !== inst) { commitPaint(); }
    S.selected = inst;
    if (!S.editPoly || S.editPoly.inst !== inst) { S.editPoly = null; }
    renderList();
    if (inst) { S.anchor = inst; }
    var panel = $("selection");
    if (!inst) {
      panel.hidden = true; $("selection-empty").hidden = false;
      $("selection-live").textContent = gettext("No cell selected.");
      requestRender(); return;
    }
    panel.hidden = false; $("selection-empty").hidden = true;
    if (opts && opts.center) { centerOn(inst, false); }
    var pos = S.visible.indexOf(inst);
    $("sel-title").textContent = isManual(inst)
      ? interpolate(gettext("Cell %(n)s of %(total)s (drawn by %(user)s)"), { n: pos + 1, total: S.visible.length, user: inst.created_by || "?" }, true)
      : interpolate(gettext("Cell %(n)s of %(total)s"), { n: pos + 1, total: S.visible.length }, true);
    $("sel-class").textContent = label(effClass(inst)) + (effClass(inst) !== inst.class_name ? " (model: " + label(inst.class_name) + ")" : "");
    $("sel-score").textContent = inst.score === null || inst.score === undefined ? "drawn" : inst.score.toFixed(3);
    $("sel-diameter").textContent = fmt(inst.diameter_um, 2) + " µm";
    $("sel-area").textContent = fmt(inst.area_um2, 1) + " µm²";
    $("sel-centroid").textContent = fmt(inst.centroid_px[0], 1) + ", " + fmt(inst.centroid_px[1], 1) + " px" +
      (inst.centroid_um ? " · " + fmt(inst.centroid_um[0], 1) + ", " + fmt(inst.centroid_um[1], 1) + " µm" : "");
    $("sel-mine").textContent = inst.mine
      ? (inst.mine.class_name
        ? interpolate(gettext("%(verdict)s as %(class)s"), { verdict: decisionText(inst.mine.verdict), "class": label(inst.mine.class_name) }, true)
        : decisionText(inst.mine.verdict))
      : gettext("not decided");
    $("sel-others").textContent = inst.others.accept + " accept, " + inst.others.reject + " reject, " + inst.others.uncertain + " uncertain";
    $("sel-agreement").textContent = inst.agreement;
    $("sel-final").textContent = inst.final ? inst.final.verdict + " " + label(inst.final.class_name) + " (" + inst.final.decided_by + ")" : "open";
    var adj = $("sel-adjudication");
    if (adj) { adj.textContent = inst.adjudication ? inst.adjudication.verdict + " " + (inst.adjudication.class_name ? label(inst.adjudication.class_name) : "") + " by " + inst.adjudication.by : "none"; }
    var dec = $("sel-decisions");
    if (dec) {
      dec.textContent = "";
      (inst.decisions || []).forEach(function (d) {
        var li = document.createElement("li");
        li.textContent = d.reviewer + ": " + d.verdict + (d.class_name ? " as " + label(d.class_name) : "");
        dec.appendChild(li);
      });
    }
    var del = $("btn-delete");
    if (del) { del.disabled = !inst.editable; }
    $("selection-live").textContent = interpolate(gettext("Selected: %(cell)s. Your decision: %(decision)s."),
      { cell: describe(inst), decision: $("sel-mine").textContent }, true);
    requestRender();
  }

  function setStatus(text, isError) {
    var el = $("save-status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
    el.setAttribute("data-pending", String(S.pending));
  }

  // ---------------------------------------------------------------- API
  function csrf() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function api(method, url, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRFToken": csrf() } };  // i18n: not shown
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      if (r.status === 204) { return null; }
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { var e = new Error(j.message || ("HTTP " + r.status)); e.status = r.status; throw e; }
        return j;
      });
    });
  }

  /* Writes run one after another, in the order they were made. */
  function enqueue(fn) {
    S.pending++; setStatus(gettext("Saving…"));
    var p = S.queue.then(fn);
    S.queue = p.catch(function () {}).then(function () {
      S.pending--;
      if (S.pending === 0 && !$("save-status").classList.contains("error")) { setStatus(gettext("All changes saved")); }
      else { setStatus($("save-status").textContent, $("save-status").classList.contains("error")); }
    });
    return p;
  }

  function urlFor(template, id) { return template.replace(ZERO, id); }

  function applyState(inst, st) {
    inst.mine = st.mine; inst.others = st.others; inst.reviewers = st.reviewers;
    inst.agreement = st.agreement; inst.final = st.final; inst.adjudication = st.adjudication;
  }

  function decide(inst, verdict, className, fromUndo) {
    if (!S.data.me.can_decide) { setStatus(gettext("You may view this image but not decide (read-only)."), true); return; }
    var prev = inst.mine ? { verdict: inst.mine.verdict, class_name: inst.mine.class_name } : null;
    if (!fromUndo) { S.undo.push({ type: "decision", inst: inst, prev: prev }); }
    inst.mine = verdict ? { verdict: verdict, class_name: className || "" } : null;
    recomputeVisible(); updateAgreement(); select(S.selected);
    var url = urlFor(cfg.apiDecision, inst.id);
    return enqueue(function () {
      return (verdict ? api("PUT", url, { verdict: verdict, class_name: className || "" }) : api("DELETE", url))
        .then(function (st) { applyState(inst, st); updateAgreement(); if (S.selected === inst) { select(inst); } })
        .catch(function (e) {
          inst.mine = prev; recomputeVisible(); updateAgreement(); select(S.selected);
          setStatus(gettext("Not saved:") + " " + e.message, true);
        });
    });
  }

  function adjudicate(inst, verdict, className) {
    var url = urlFor(cfg.apiAdjudication, inst.id);
    return enqueue(function () {
      return (verdict ? api("PUT", url, { verdict: verdict, class_name: className || "" }) : api("DELETE", url))
        .then(function (st) { applyState(inst, st); recomputeVisible(); updateAgreement(); select(inst); })
        .catch(function (e) { setStatus(gettext("Not saved:") + " " + e.message, true); });
    });
  }

  function addInstance(obj) {
    var inst = {
      id: obj.id, result_set: obj.result_set, source: "manual", index: obj.index, class_name: obj.class_name,
      score: null, box: obj.box, rle: obj.rle, polygon: obj.polygon, area_px: obj.area_px,
      area_um2: obj.area_um2, diameter_um: obj.diameter_um, centroid_px: obj.centroid_px,
      centroid_um: S.data.image.um_per_px ? [obj.centroid_px[0] * S.data.image.um_per_px, obj.centroid_px[1] * S.data.image.um_per_px] : null,
      created_by: S.data.me.username, editable: true,
      mine: { verdict: "accept", class_name: "" }, others: { accept: 0, reject: 0, uncertain: 0 },
      reviewers: 1, agreement: "single", adjudication: null, final: { verdict: "accept", class_name: obj.class_name, decided_by: "unanimous:1" }
    };
    S.instances.push(inst); S.byId[inst.id] = inst;
    return inst;
  }

  function removeInstance(inst) {
    S.instances = S.instances.filter(function (i) { return i !== inst; });
    delete S.byId[inst.id];
    if (S.selected === inst) { S.selected = null; }
  }

  function createInstance(polygon, className, fromUndo) {
    if (!S.data.me.can_annotate) { setStatus(gettext("You may view this image but not draw (read-only)."), true); return; }
    return enqueue(function () {
      return api("POST", cfg.apiInstanceCreate, { polygon: polygon, class_name: className })
        .then(function (obj) {
          var inst = addInstance(obj);
          if (!fromUndo) { S.undo.push({ type: "create", inst: inst }); }
          recomputeVisible(); updateAgreement(); select(inst);
          $("drawn-count").textContent = String(S.instances.filter(isManual).length);
          return inst;
        })
        .catch(function (e) { setStatus(gettext("Not saved:") + " " + e.message, true); });
    });
  }

  function updatePolygon(inst, polygon, prevPolygon, fromUndo) {
    return enqueue(function () {
      return api("PATCH", urlFor(cfg.apiInstance, inst.id), { polygon: polygon })
        .then(function (obj) {
          inst.polygon = obj.polygon; inst.box = obj.box; inst.rle = obj.rle; inst.area_px = obj.area_px;
          inst.area_um2 = obj.area_um2; inst.diameter_um = obj.diameter_um; inst.centroid_px = obj.centroid_px;
          if (!fromUndo) { S.undo.push({ type: "edit", inst: inst, prev: prevPolygon }); }
          select(inst);
        })
        .catch(function (e) { inst.polygon = prevPolygon; setStatus(gettext("Not saved:") + " " + e.message, true); requestRender(); });
    });
  }

  function deleteInstance(inst, fromUndo) {
    if (!inst || !inst.editable) { setStatus(gettext("Only drawn cells can be deleted; reject model detections instead."), true); return; }
    return enqueue(function () {
      return api("DELETE", urlFor(cfg.apiInstance, inst.id))
        .then(function () {
          removeInstance(inst);
          if (!fromUndo) { S.undo.push({ type: "delete", polygon: inst.polygon, class_name: inst.class_name }); }
          recomputeVisible(); updateAgreement(); select(null);
          $("drawn-count").textContent = String(S.instances.filter(isManual).length);
        })
        .catch(function (e) { setStatus(gettext("Not deleted:") + " " + e.message, true); });
    });
  }

  function undo() {
    var step = S.undo.pop();
    if (!step) { setStatus(gettext("Nothing to undo.")); return; }
    if (step.type === "decision") {
      var p = step.prev;
      select(step.inst, { center: true });
      decide(step.inst, p ? p.verdict : null, p ? p.class_name : "", true);
    } else if (step.type === "create") {
      deleteInstance(step.inst, true);
    } else if (step.type === "edit") {
      updatePolygon(step.inst, step.prev, step.inst.polygon, true);
    } else if (step.type === "delete") {
      createInstance(step.polygon, step.class_name, true);
    } else if (step.type === "correction") {
      select(step.inst, { center: true });
      revertCorrection(step);
    }
  }

  // ---------------------------------------------------------------- tools
  function circleRadiusPx() {
    var um = S.data && S.data.image.um_per_px;
    return um ? cfg.typicalDiameterUm / 2 / um : 20;
  }

  function circleAt(x, y) {
    var r = circleRadiusPx(), pts = [];
    for (var k = 0; k < 24; k++) { pts.push([x + r * Math.cos(2 * Math.PI * k / 24), y + r * Math.sin(2 * Math.PI * k / 24)]); }
    return pts;
  }

  function drawClass() { return $("draw-class").value || cfg.targetClass; }

  var TOOLS = ["select", "polygon", "circle", "edit", "brush", "eraser", "split", "merge"];
  function setTool(tool) {
    S.tool = tool; S.draft = [];
    if (S.paint) { commitPaint(); }
    S.splitLine = null; S.editPoly = null;
    TOOLS.forEach(function (t) {
      var b = $("tool-" + t);
      if (b) { b.setAttribute("aria-pressed", String(t === tool)); }
    });
    canvas.setAttribute("data-tool", tool);
    var hints = {
      select: gettext("Click a cell to select it; drag to pan."),
      polygon: gettext("Click to add vertices; Enter or double-click closes the polygon; Backspace removes the last vertex; Escape cancels."),
      circle: interpolate(gettext("Click (or press Enter for the view centre) to place a %(diameter)s µm circle."), { diameter: cfg.typicalDiameterUm }, true),
      edit: gettext("Drag the handles of the selected cell (any cell: the change is stored as your correction)."),
      brush: gettext("Paint onto the selected cell; , and . change the brush size."),
      eraser: gettext("Erase from the selected cell; , and . change the eraser size."),
      split: gettext("Drag a line across the selected cell to cut it in two."),
      merge: gettext("Click a second cell to merge it into the selected one.")
    };
    $("tool-hint").textContent = hints[tool];
    requestRender();
  }

  function finishPolygon() {
    if (S.draft.length < 3) { setStatus(gettext("A polygon needs at least 3 vertices."), true); return; }
    var pts = S.draft.map(function (p) { return [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100]; });
    S.draft = [];
    createInstance(pts, drawClass());
    requestRender();
  }

  // ---------------------------------------------------------------- corrected masks (any cell)
  /* Swap a cell's shape for my correction (or back to its own shape when `corr` is null). */
  function applyCorrection(inst, corr) {
    if (corr && !inst.orig) {
      inst.orig = { box: inst.box, rle: inst.rle, polygon: inst.polygon, area_px: inst.area_px, area_um2: inst.area_um2,
                    diameter_um: inst.diameter_um, centroid_px: inst.centroid_px };
    }
    var shape = corr || inst.orig;
    inst.correction = corr || null;
    if (shape) {
      inst.box = shape.box; inst.rle = shape.rle; inst.area_px = shape.area_px; inst.area_um2 = shape.area_um2;
      inst.diameter_um = shape.diameter_um; inst.centroid_px = shape.centroid_px;
      inst.polygon = corr ? null : shape.polygon;
    }
    if (!corr) { inst.orig = null; }
    inst.bakedKey = null; inst.mask = null; decodeCrop(inst);
    S.editPoly = null;
  }

  function correctionUrl(inst) { return urlFor(cfg.apiCorrection, inst.id); }

  function saveCorrection(inst, body, what) {
    return enqueue(function () {
      return api("PUT", correctionUrl(inst), body).then(function (res) {
        applyCorrection(inst, res.current);
        S.undo.push({ type: "correction", inst: inst });
        setStatus(what + " " + gettext("saved."));
        select(inst); renderList();
      }).catch(function (e) { setStatus(gettext("Not saved:") + " " + e.message, true); requestRender(); });
    });
  }

  function revertCorrection(step) {
    var inst = step.inst;
    return enqueue(function () {
      return api("DELETE", correctionUrl(inst)).then(function (res) {
        applyCorrection(inst, res.current);
        if (step.splitPartner) { removeInstance(step.splitPartner); }
        if (step.mergePartner) { step.mergePartner.mine = step.mergePrev; }
        recomputeVisible(); updateAgreement(); select(inst); renderList();
        $("drawn-count").textContent = String(S.instances.filter(isManual).length);
      }).catch(function (e) { setStatus(gettext("Not undone:") + " " + e.message, true); });
    });
  }

  // brush and eraser: a working copy of the selected cell's mask, painted in image pixels
  function brushRadiusPx() {
    var um = S.data && S.data.image.um_per_px;
    return Math.max(0.5, um ? S.brushUm / 2 / um : S.brushUm * 2);
  }

  function setBrush(um) {
    S.brushUm = Math.min(20, Math.max(0.5, Math.round(um * 2) / 2));
    var el = $("brush-size");
    if (el) { el.value = String(S.brushUm); }
    var out = $("brush-size-value");
    if (out) { out.textContent = S.brushUm.toFixed(1) + " µm"; }
    requestRender();
  }

  function beginPaint(inst) {
    if (!inst.mask) { decodeCrop(inst); }
    var W = S.data.image.width, H = S.data.image.height, margin = Math.ceil(brushRadiusPx() * 2 + 24);
    var x0 = Math.max(0, inst.ox - margin), y0 = Math.max(0, inst.oy - margin);
    var x1 = Math.min(W, inst.ox + inst.mw + margin), y1 = Math.min(H, inst.oy + inst.mh + margin);
    x1 = Math.min(x1, x0 + 1024); y1 = Math.min(y1, y0 + 1024);
    var w = x1 - x0, h = y1 - y0, mask = new Uint8Array(w * h);
    for (var y = 0; y < inst.mh; y++) {
      for (var x = 0; x < inst.mw; x++) {
        var gx = inst.ox + x - x0, gy = inst.oy + y - y0;
        if (gx >= 0 && gy >= 0 && gx < w && gy < h && inst.mask[y * inst.mw + x]) { mask[gy * w + gx] = 1; }
      }
    }
    S.paint = { inst: inst, ox: x0, oy: y0, w: w, h: h, mask: mask, last: null, dirty: false };
  }

  function stamp(px, py) {
    var P = S.paint, r = brushRadiusPx(), value = S.tool === "brush" ? 1 : 0;
    var cx = px - P.ox, cy = py - P.oy;
    for (var y = Math.max(0, Math.floor(cy - r)); y <= Math.min(P.h - 1, Math.ceil(cy + r)); y++) {
      for (var x = Math.max(0, Math.floor(cx - r)); x <= Math.min(P.w - 1, Math.ceil(cx + r)); x++) {
        var dx = x + 0.5 - cx, dy = y + 0.5 - cy;
        if (dx * dx + dy * dy <= r * r) { P.mask[y * P.w + x] = value; }
      }
    }
    P.dirty = true;
  }

  function strokeTo(q) {
    var P = S.paint, r = brushRadiusPx();
    if (P.last) {
      var dx = q[0] - P.last[0], dy = q[1] - P.last[1], n = Math.max(1, Math.ceil(Math.hypot(dx, dy) / Math.max(0.5, r / 2)));
      for (var i = 1; i <= n; i++) { stamp(P.last[0] + dx * i / n, P.last[1] + dy * i / n); }
    } else { stamp(q[0], q[1]); }
    P.last = q; requestRender();
  }

  function paintCanvas(color) {
    var P = S.paint, c = document.createElement("canvas");
    c.width = P.w; c.height = P.h;
    var cx = c.getContext("2d"), id = cx.createImageData(P.w, P.h), rgb = hexRgb(color), d = id.data;
    for (var i = 0; i < P.mask.length; i++) {
      if (!P.mask[i]) { continue; }
      d[i * 4] = rgb[0]; d[i * 4 + 1] = rgb[1]; d[i * 4 + 2] = rgb[2]; d[i * 4 + 3] = 150;
    }
    cx.putImageData(id, 0, 0);
    return c;
  }

  /* Uncompressed COCO RLE of a row-major mask (column-major runs, background first). */
  function encodeCrop(mask, w, h) {
    var counts = [], value = 0, run = 0;
    for (var x = 0; x < w; x++) {
      for (var y = 0; y < h; y++) {
        var v = mask[y * w + x] ? 1 : 0;
        if (v !== value) { counts.push(run); value = v; run = 0; }
        run++;
      }
    }
    counts.push(run);
    return counts;
  }

  function commitPaint() {
    var P = S.paint;
    S.paint = null;
    if (!P || !P.dirty) { requestRender(); return; }
    var any = false;
    for (var i = 0; i < P.mask.length; i++) { if (P.mask[i]) { any = true; break; } }
    if (!any) { setStatus(gettext("The mask would be empty; use Reject to drop a cell."), true); requestRender(); return; }
    saveCorrection(P.inst, { mask: { origin: [P.ox, P.oy], size: [P.h, P.w], counts: encodeCrop(P.mask, P.w, P.h) } },
                   S.tool === "brush" ? gettext("Brush stroke") : gettext("Eraser stroke"));
  }

  function drawBrushCursor() {
    var r = brushRadiusPx() * S.scale;
    ctx.beginPath(); ctx.arc(S.cursor[0], S.cursor[1], r, 0, 2 * Math.PI);
    ctx.strokeStyle = S.tool === "brush" ? "#ffd400" : "#ffffff"; ctx.lineWidth = 1.5;
    ctx.setLineDash(S.tool === "brush" ? [] : [3, 3]); ctx.stroke(); ctx.setLineDash([]);
  }

  // vertex editing of any cell: the outline of its mask, simplified (Douglas–Peucker, tolerance in µm)
  var SIMPLIFY_TOLERANCE_UM = 0.3;

  /* The outer boundary of the first region of a row-major mask (Moore-neighbour tracing), in pixel centres. */
  function traceOutline(mask, w, h) {
    var start = -1;
    for (var i = 0; i < w * h; i++) { if (mask[i]) { start = i; break; } }
    if (start < 0) { return []; }
    var DX = [-1, -1, 0, 1, 1, 1, 0, -1], DY = [0, -1, -1, -1, 0, 1, 1, 1];
    function on(x, y) { return x >= 0 && y >= 0 && x < w && y < h && mask[y * w + x] === 1; }
    function dirOf(dx, dy) { for (var k = 0; k < 8; k++) { if (DX[k] === dx && DY[k] === dy) { return k; } } return 0; }
    var sx = start % w, sy = Math.floor(start / w), cx = sx, cy = sy, back = 0, pts = [[sx, sy]], second = null;
    for (var n = 0; n < 4 * w * h + 16; n++) {
      var found = -1;
      for (var k = 0; k < 8; k++) {
        var d = (back + k) % 8;
        if (on(cx + DX[d], cy + DY[d])) { found = d; break; }
      }
      if (found < 0) { break; }
      var pd = (found + 7) % 8, px = cx + DX[pd], py = cy + DY[pd];
      var nx = cx + DX[found], ny = cy + DY[found];
      back = dirOf(px - nx, py - ny);
      if (cx === sx && cy === sy && second && nx === second[0] && ny === second[1]) { break; }
      cx = nx; cy = ny;
      if (!second) { second = [cx, cy]; }
      if (cx === sx && cy === sy) { continue; }
      pts.push([cx, cy]);
    }
    return pts;
  }

  function simplifyRing(pts, tol) {
    if (pts.length <= 4) { return pts.slice(); }
    var far = 0, best = -1;
    for (var i = 0; i < pts.length; i++) {
      var d = Math.pow(pts[i][0] - pts[0][0], 2) + Math.pow(pts[i][1] - pts[0][1], 2);
      if (d > best) { best = d; far = i; }
    }
    function chain(a) {
      var keep = {}, stack = [[0, a.length - 1]];
      keep[0] = true; keep[a.length - 1] = true;
      while (stack.length) {
        var ij = stack.pop(), i0 = ij[0], j0 = ij[1];
        if (j0 <= i0 + 1) { continue; }
        var ax = a[i0][0], ay = a[i0][1], bx = a[j0][0], by = a[j0][1], seg = Math.hypot(bx - ax, by - ay), kmax = -1, dmax = -1;
        for (var k = i0 + 1; k < j0; k++) {
          var dist = seg > 0 ? Math.abs((bx - ax) * (a[k][1] - ay) - (by - ay) * (a[k][0] - ax)) / seg : Math.hypot(a[k][0] - ax, a[k][1] - ay);
          if (dist > dmax) { dmax = dist; kmax = k; }
        }
        if (dmax > tol) { keep[kmax] = true; stack.push([i0, kmax], [kmax, j0]); }
      }
      return Object.keys(keep).map(Number).sort(function (p, q) { return p - q; });
    }
    var first = pts.slice(0, far + 1), second = pts.slice(far).concat([pts[0]]);
    var idx = chain(first).concat(chain(second).slice(1, -1).map(function (k) { return far + k; }));
    return idx.map(function (k) { return pts[k].slice(); });
  }

  function outlineOf(inst) {
    if (!inst.mask) { decodeCrop(inst); }
    var um = S.data.image.um_per_px, tol = um ? Math.max(0.75, SIMPLIFY_TOLERANCE_UM / um) : 1.5;
    var ring = traceOutline(inst.mask, inst.mw, inst.mh).map(function (p) { return [p[0] + inst.ox + 0.5, p[1] + inst.oy + 0.5]; });
    return simplifyRing(ring, tol).map(function (p) { return [Math.round(p[0] * 100) / 100, Math.round(p[1] * 100) / 100]; });
  }

  /* Drawn cells of mine keep editing their own polygon; any other cell edits my correction of it. */
  function ownPolygonEdit(inst) { return inst.editable && inst.polygon && !inst.correction; }

  function editHandles() {
    var sel = S.selected;
    if (!sel || S.tool !== "edit" || !S.data.me.can_decide) { return null; }
    if (ownPolygonEdit(sel)) { return sel.polygon; }
    if (!S.editPoly || S.editPoly.inst !== sel) { S.editPoly = { inst: sel, pts: outlineOf(sel) }; }
    canvas.setAttribute("data-handles", String(S.editPoly.pts.length));
    return S.editPoly.pts;
  }

  function traceScreenPolygon(pts, color) {
    ctx.beginPath();
    pts.forEach(function (p, i) { var q = toScreen(p[0], p[1]); if (i === 0) { ctx.moveTo(q[0], q[1]); } else { ctx.lineTo(q[0], q[1]); } });
    ctx.closePath(); ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.stroke();
  }

  // split (draw a line across the selected cell) and merge (click a second cell)
  function splitSelected(line) {
    var inst = S.selected;
    return enqueue(function () {
      return api("POST", urlFor(cfg.apiSplit, inst.id), { line: line }).then(function (res) {
        applyCorrection(inst, res.correction);
        var part = addInstance(res.new_instance);
        S.undo.push({ type: "correction", inst: inst, splitPartner: part });
        recomputeVisible(); updateAgreement(); select(inst); renderList();
        $("drawn-count").textContent = String(S.instances.filter(isManual).length);
        setStatus(gettext("Split: the other part is now a drawn cell."));
      }).catch(function (e) { setStatus(gettext("Not split:") + " " + e.message, true); });
    });
  }

  function mergeInto(inst, other) {
    var prev = other.mine;
    return enqueue(function () {
      return api("POST", urlFor(cfg.apiMerge, inst.id), { other: other.id }).then(function (res) {
        applyCorrection(inst, res.correction);
        applyState(other, res.other);
        S.undo.push({ type: "correction", inst: inst, mergePartner: other, mergePrev: prev });
        recomputeVisible(); updateAgreement(); select(inst); renderList();
        setStatus(gettext("Merged; the other cell is rejected as part of this one."));
      }).catch(function (e) { setStatus(gettext("Not merged:") + " " + e.message, true); });
    });
  }

  // ---------------------------------------------------------------- cell list beside the image
  function decisionOf(inst) { return inst.mine ? inst.mine.verdict : "undecided"; }
  function disputed(inst) {
    return inst.agreement === "disagree" || (inst.mine && inst.mine.verdict === "uncertain") || (inst.others && inst.others.uncertain > 0);
  }

  function listRows() {
    var f = S.listFilter;
    var rows = S.visible.filter(function (inst) {
      if (f.cls && effClass(inst) !== f.cls) { return false; }
      if (f.decision && decisionOf(inst) !== f.decision) { return false; }
      if (f.agreement === "disputed" && !disputed(inst)) { return false; }
      if (f.agreement && f.agreement !== "disputed" && inst.agreement !== f.agreement) { return false; }
      if (f.minScore && inst.score !== null && inst.score !== undefined && inst.score < f.minScore) { return false; }
      return true;
    });
    var key = S.listSort.key, dir = S.listSort.dir, order = {};
    S.visible.forEach(function (inst, i) { order[inst.id] = i; });
    var value = {
      order: function (i) { return order[i.id]; },
      "class": function (i) { return label(effClass(i)); },
      score: function (i) { return i.score === null || i.score === undefined ? 2 : i.score; },
      decision: function (i) { return decisionOf(i); },
      agreement: function (i) { return disputed(i) ? 0 : ({ none: 3, single: 2, agree: 1, disagree: 0 })[i.agreement]; }
    }[key];
    rows.sort(function (p, q) {
      var a = value(p), b = value(q);
      return (a < b ? -1 : a > b ? 1 : order[p.id] - order[q.id]) * dir;
    });
    return rows;
  }

  var listFrame = 0, MAX_LIST_ROWS = 300;  // the DOM stays small on images with hundreds of cells
  function renderList() {
    if (!$("cell-list-body") || listFrame) { return; }
    listFrame = requestAnimationFrame(function () { listFrame = 0; renderListNow(); });
  }

  /* A sort, filter or threshold the person just chose shows at once, so the list never lags their input;
     a frame already asked for is dropped (the list is built once per input event). */
  function renderListAtOnce() {
    if (!$("cell-list-body")) { return; }
    if (listFrame) { cancelAnimationFrame(listFrame); listFrame = 0; }
    renderListNow();
  }

  function renderListNow() {
    var body = $("cell-list-body"), rows = listRows(), order = {};
    S.visible.forEach(function (inst, i) { order[inst.id] = i + 1; });
    body.textContent = "";
    rows.slice(0, MAX_LIST_ROWS).forEach(function (inst) {
      var tr = document.createElement("tr");
      tr.setAttribute("data-cell", inst.id);
      if (inst === S.selected) { tr.className = "selected"; tr.setAttribute("aria-selected", "true"); }
      var cells = [String(order[inst.id]), label(effClass(inst)),
        inst.score === null || inst.score === undefined ? gettext("drawn") : inst.score.toFixed(2),
        decisionText(decisionOf(inst)), disputed(inst) ? gettext("disputed") : agreementText(inst.agreement)];
      cells.forEach(function (text, k) {
        var td = document.createElement("td");
        if (k === 1) {
          var sw = document.createElement("span"); sw.className = "swatch swatch-" + effClass(inst); sw.setAttribute("aria-hidden", "true");  // i18n: not shown
          td.appendChild(sw);
        }
        td.appendChild(document.createTextNode(text));
        tr.appendChild(td);
      });
      tr.tabIndex = -1;
      tr.addEventListener("click", function () { select(inst, { center: true }); });
      body.appendChild(tr);
    });
    if (rows.length > MAX_LIST_ROWS) {
      var more = document.createElement("tr"), td = document.createElement("td");
      td.colSpan = 5; td.className = "hint";
      td.textContent = interpolate(gettext("%(n)s more: filter or sort to see them"), { n: rows.length - MAX_LIST_ROWS }, true);
      more.appendChild(td); body.appendChild(more);
    }
    $("cell-list-count").textContent = String(rows.length);
    document.querySelectorAll("#cell-list th button[data-sort]").forEach(function (b) {
      var th = b.parentElement;
      th.setAttribute("aria-sort", b.getAttribute("data-sort") === S.listSort.key ? (S.listSort.dir > 0 ? "ascending" : "descending") : "none");
    });
  }

  /* The next shown cell (after the current one) that is disputed between reviewers or called uncertain. */
  function stepDisputed() {
    if (!S.visible.length) { return; }
    var k = S.selected ? S.visible.indexOf(S.selected) : -1;
    for (var m = 1; m <= S.visible.length; m++) {
      var inst = S.visible[(k + m) % S.visible.length];
      if (disputed(inst)) { select(inst, { center: true }); return; }
    }
    setStatus(gettext("No disputed or uncertain cell is shown."));
  }

  // ---------------------------------------------------------------- image done, deep links
  function showDone() {
    var el = $("image-done-state");
    if (el) { el.textContent = S.data.image.done ? gettext("You marked this image done.") : gettext("Not marked done."); }
    var b = $("btn-image-done");
    if (b) { b.setAttribute("aria-pressed", String(!!S.data.image.done)); }
  }

  function imageDoneNext() {
    if (!S.data.me.can_decide) { return; }
    enqueue(function () {
      return api("PUT", cfg.apiImageDone, { done: true }).then(function (res) {
        S.data.image.done = true; showDone();
        if (res.next_open_id) { window.location.assign(urlFor(cfg.viewerUrl, res.next_open_id)); }
        else { setStatus(gettext("Every image of this session is marked done by you.")); }
      }).catch(function (e) { setStatus(gettext("Not saved:") + " " + e.message, true); });
    });
  }

  /* ?cell=<id>: select that cell, zoom to it and put it in the middle of the view. */
  function openDeepLink() {
    var want = new URLSearchParams(window.location.search).get("cell");
    if (!want) { return; }
    var inst = S.byId[want];
    if (!inst) { setStatus(gettext("The linked cell is not on this image."), true); return; }
    var side = Math.max(inst.box[2] - inst.box[0], inst.box[3] - inst.box[1], 4);
    S.scale = Math.min(8, Math.max(S.scale, Math.min(S.cw, S.ch) / (side * 6)));
    select(inst); centerOn(inst, true); requestRender();
    canvas.setAttribute("data-deep-link", inst.id);
  }

  // ---------------------------------------------------------------- navigation
  /* The visible cell after (delta > 0) or before the instance `from` in list order, wrapping around. */
  function neighbour(from, delta) {
    var n = S.instances.length, k = S.instances.indexOf(from);
    for (var m = 1; m <= n; m++) {
      var inst = S.instances[(k + delta * m + n * m) % n];
      if (passes(inst)) { return inst; }
    }
    return null;
  }

  /* The next (delta > 0) or previous shown cell that I have not decided, after the current one. */
  function stepUndecided(delta) {
    if (!S.visible.length) { return; }
    var from = S.selected || (S.anchor && S.instances.indexOf(S.anchor) >= 0 ? S.anchor : null);
    var n = S.instances.length, k = from ? S.instances.indexOf(from) : (delta > 0 ? -1 : n);
    for (var m = 1; m <= n; m++) {
      var inst = S.instances[(((k + delta * m) % n) + n) % n];
      if (passes(inst) && !inst.mine) { select(inst, { center: true }); return; }
    }
    setStatus(gettext("Every cell shown is decided; j and k go through all of them."));
  }

  function autoAdvance() {
    if (S.autoAdvance) { stepUndecided(1); }
  }

  function step(delta) {
    if (!S.visible.length) { return; }
    var i = S.selected ? S.visible.indexOf(S.selected) : -1;
    if (i < 0 && S.anchor && S.instances.indexOf(S.anchor) >= 0) {
      var next = neighbour(S.anchor, delta);
      if (next) { select(next, { center: true }); return; }
    }
    i = i < 0 ? (delta > 0 ? 0 : S.visible.length - 1) : (i + delta + S.visible.length) % S.visible.length;
    select(S.visible[i], { center: true });
  }

  function gotoImage(delta) {
    var id = delta > 0 ? S.data.image.next_id : S.data.image.prev_id;
    if (!id) { setStatus(delta > 0 ? gettext("This is the last image of the session.") : gettext("This is the first image of the session.")); return; }
    S.queue.then(function () { window.location.assign(urlFor(cfg.viewerUrl, id)); });
  }

  // ---------------------------------------------------------------- events
  function localXY(ev) { var r = canvas.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; }

  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var p = localXY(ev);
    zoomAt(Math.exp(-ev.deltaY * 0.0015), p[0], p[1]);
  }, { passive: false });

  canvas.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0 || !S.data) { return; }
    canvas.focus();
    var p = localXY(ev);
    var handles = editHandles();
    if (handles) {
      for (var i = 0; i < handles.length; i++) {
        var s = toScreen(handles[i][0], handles[i][1]);
        if (Math.abs(s[0] - p[0]) <= 7 && Math.abs(s[1] - p[1]) <= 7) {
          S.vertexDrag = { index: i, pts: handles, prev: handles.map(function (q) { return q.slice(); }) };
          return;
        }
      }
    }
    if ((S.tool === "brush" || S.tool === "eraser") && S.data.me.can_decide) {
      if (!S.selected) { select(hit(p[0], p[1])); if (!S.selected) { setStatus(gettext("Select a cell to paint on."), true); } return; }
      if (!S.paint || S.paint.inst !== S.selected) { beginPaint(S.selected); }
      S.paint.last = null; S.painting = true; strokeTo(toImage(p[0], p[1]));
      return;
    }
    if (S.tool === "split" && S.selected) { var a = toImage(p[0], p[1]); S.splitLine = [a, a.slice()]; return; }
    S.drag = { x: p[0], y: p[1], moved: false };
  });

  window.addEventListener("mousemove", function (ev) {
    if (!S.data) { return; }
    var p = localXY(ev);
    if (S.vertexDrag) {
      var q = toImage(p[0], p[1]);
      S.vertexDrag.pts[S.vertexDrag.index] = [Math.round(q[0] * 100) / 100, Math.round(q[1] * 100) / 100];
      requestRender(); return;
    }
    if (S.painting) { S.cursor = p; strokeTo(toImage(p[0], p[1])); return; }
    if (S.splitLine) { S.splitLine[1] = toImage(p[0], p[1]); requestRender(); return; }
    if (S.drag) {
      var dx = p[0] - S.drag.x, dy = p[1] - S.drag.y;
      if (S.drag.moved || Math.abs(dx) + Math.abs(dy) > 3) {
        S.drag.moved = true; S.drag.x = p[0]; S.drag.y = p[1];
        canvas.classList.add("panning"); panBy(dx, dy);
      }
      return;
    }
    if (ev.target !== canvas) { return; }
    S.cursor = p;
    var h = hit(p[0], p[1]);
    var changed = h !== S.hover;
    if (changed) { S.hover = h; showHover(h); }
    if (changed || S.tool !== "select") { requestRender(); }
  });

  window.addEventListener("mouseup", function (ev) {
    if (S.vertexDrag) {
      var vd = S.vertexDrag; S.vertexDrag = null;
      if (ownPolygonEdit(S.selected)) { updatePolygon(S.selected, S.selected.polygon.map(function (q) { return q.slice(); }), vd.prev); }
      else { saveCorrection(S.selected, { polygon: vd.pts.map(function (q) { return q.slice(); }) }, gettext("Vertex edit")); }
      return;
    }
    if (S.painting) { S.painting = false; commitPaint(); return; }
    if (S.splitLine) {
      var line = S.splitLine; S.splitLine = null; requestRender();
      if (Math.hypot(line[1][0] - line[0][0], line[1][1] - line[0][1]) * S.scale < 5) { setStatus(gettext("Drag a line across the cell."), true); return; }
      splitSelected(line.map(function (q) { return [Math.round(q[0] * 100) / 100, Math.round(q[1] * 100) / 100]; }));
      return;
    }
    if (!S.drag) { return; }
    var d = S.drag; S.drag = null; canvas.classList.remove("panning");
    if (d.moved) { return; }
    var p = localXY(ev), q = toImage(p[0], p[1]);
    if (S.tool === "polygon") { S.draft.push(q); requestRender(); }
    else if (S.tool === "circle") { createInstance(circleAt(q[0], q[1]), drawClass()); }
    else if (S.tool === "merge" && S.selected) {
      var other = hit(p[0], p[1]);
      if (other && other !== S.selected) { mergeInto(S.selected, other); } else { setStatus(gettext("Click a second cell to merge into the selected one."), true); }
    }
    else { select(hit(p[0], p[1])); }
  });

  canvas.addEventListener("dblclick", function (ev) {
    if (S.tool === "polygon") {
      ev.preventDefault();
      // the double click added the same vertex twice
      if (S.draft.length > 3) { S.draft.pop(); }
      finishPolygon();
    }
  });

  canvas.addEventListener("mouseleave", function () { S.cursor = null; S.hover = null; showHover(null); requestRender(); });

  function typing(el) {
    if (!el) { return false; }
    var tag = el.tagName;
    return tag === "TEXTAREA" || (tag === "INPUT" && el.type !== "range" && el.type !== "checkbox" && el.type !== "button") || el.isContentEditable;
  }

  document.addEventListener("keydown", function (ev) {
    if (!S.data || typing(ev.target)) { return; }
    if (ev.altKey || ev.metaKey) { return; }
    var k = ev.key, sel = S.selected, handled = true;
    if (ev.ctrlKey) {
      if (k === "z" || k === "Z") { undo(); ev.preventDefault(); }
      return;
    }
    var onRange = ev.target && ev.target.type === "range";
    if (onRange && (k.indexOf("Arrow") === 0 || k === "Home" || k === "End" || k === "PageUp" || k === "PageDown")) { return; }  // i18n: not shown
    var onSelect = ev.target && ev.target.tagName === "SELECT";
    if (onSelect && k.indexOf("Arrow") === 0) { return; }  // i18n: not shown
    var onButton = ev.target && (ev.target.tagName === "BUTTON" || ev.target.tagName === "A");
    switch (k) {
      case "n": stepUndecided(1); break;
      case "p": stepUndecided(-1); break;
      case "j": step(1); break;
      case "k": step(-1); break;
      case "N": case "]": gotoImage(1); break;
      case "P": case "[": gotoImage(-1); break;
      case "a": if (sel) { decide(sel, "accept", sel.mine ? sel.mine.class_name : ""); autoAdvance(); } break;
      case "r": if (sel) { decide(sel, "reject", sel.mine ? sel.mine.class_name : ""); autoAdvance(); } break;
      case "u": if (sel) { decide(sel, "uncertain", sel.mine ? sel.mine.class_name : ""); autoAdvance(); } break;
      case "1": case "2": case "3": case "4": case "5": case "6":
        var c = S.classes[parseInt(k, 10) - 1];
        if (S.tool === "polygon" || S.tool === "circle") { $("draw-class").value = c.name; setStatus(interpolate(gettext("Drawing %(class)s."), { "class": label(c.name) }, true)); }
        else if (sel) { decide(sel, "accept", c.name); autoAdvance(); }
        break;
      case "z": undo(); break;
      case "+": case "=": zoomAt(1.25); break;
      case "-": case "_": zoomAt(0.8); break;
      case "0": case "f": fit(); break;
      case "v": setTool("select"); break;
      case "g": setTool("polygon"); break;
      case "c": setTool("circle"); break;
      case "e": setTool("edit"); break;
      case "b": setTool("brush"); break;
      case "x": setTool("eraser"); break;
      case "s": setTool("split"); break;
      case "m": setTool("merge"); break;
      case ",": setBrush(S.brushUm - 0.5); break;
      case ".": setBrush(S.brushUm + 0.5); break;
      case "d": stepDisputed(); break;
      case "D": imageDoneNext(); break;
      case "ArrowLeft": if (onButton) { handled = false; } else { panBy(60, 0); } break;
      case "ArrowRight": if (onButton) { handled = false; } else { panBy(-60, 0); } break;
      case "ArrowUp": if (onButton) { handled = false; } else { panBy(0, 60); } break;
      case "ArrowDown": if (onButton) { handled = false; } else { panBy(0, -60); } break;
      case "Enter":  // i18n: not shown
        if (onButton) { handled = false; }
        else if (S.tool === "polygon") { finishPolygon(); }
        else if (S.tool === "circle") { var q = toImage(S.cw / 2, S.ch / 2); createInstance(circleAt(q[0], q[1]), drawClass()); }
        else { handled = false; }
        break;
      case "Escape":  // i18n: not shown
        if (S.draft.length) { S.draft = []; requestRender(); } else if (S.tool !== "select") { setTool("select"); } else { select(null); }
        break;
      case "Backspace":  // i18n: not shown
        if (S.tool === "polygon" && S.draft.length) { S.draft.pop(); requestRender(); } else { handled = false; }
        break;
      case "Delete":  // i18n: not shown
        if (sel && sel.editable) { deleteInstance(sel); } else { handled = false; }
        break;
      case "?": $("shortcuts").open = !$("shortcuts").open; break;
      default: handled = false;
    }
    if (handled) { ev.preventDefault(); }
  });

  function bindClick(id, fn) { var el = $(id); if (el) { el.addEventListener("click", fn); } }
  bindClick("zoom-in", function () { zoomAt(1.25); });
  bindClick("zoom-out", function () { zoomAt(0.8); });
  bindClick("zoom-fit", fit);
  TOOLS.forEach(function (t) { bindClick("tool-" + t, function () { setTool(t); }); });
  bindClick("btn-accept", function () { if (S.selected) { decide(S.selected, "accept", S.selected.mine ? S.selected.mine.class_name : ""); autoAdvance(); } });
  bindClick("btn-reject", function () { if (S.selected) { decide(S.selected, "reject", S.selected.mine ? S.selected.mine.class_name : ""); autoAdvance(); } });
  bindClick("btn-uncertain", function () { if (S.selected) { decide(S.selected, "uncertain", S.selected.mine ? S.selected.mine.class_name : ""); autoAdvance(); } });
  bindClick("btn-clear", function () { if (S.selected) { decide(S.selected, null, ""); } });
  bindClick("btn-undo", undo);
  bindClick("btn-prev", function () { stepUndecided(-1); });
  bindClick("btn-next", function () { stepUndecided(1); });
  bindClick("btn-prev-any", function () { step(-1); });
  bindClick("btn-next-any", function () { step(1); });
  /* Auto-advance after a decision: a personal setting of this browser. */
  var auto = $("auto-advance");
  if (auto) {
    try { S.autoAdvance = window.localStorage.getItem("review.autoAdvance") === "1"; } catch (e) { S.autoAdvance = false; }
    auto.checked = S.autoAdvance;
    auto.addEventListener("change", function () {
      S.autoAdvance = auto.checked;
      try { window.localStorage.setItem("review.autoAdvance", auto.checked ? "1" : "0"); } catch (e) { /* private mode */ }
    });
  }
  bindClick("btn-delete", function () { deleteInstance(S.selected); });
  bindClick("btn-image-done", imageDoneNext);
  bindClick("btn-disputed", stepDisputed);
  var brushInput = $("brush-size");
  if (brushInput) { brushInput.addEventListener("input", function () { setBrush(parseFloat(brushInput.value)); }); }
  document.querySelectorAll("#cell-list th button[data-sort]").forEach(function (b) {
    b.addEventListener("click", function () {
      var key = b.getAttribute("data-sort");
      S.listSort = { key: key, dir: S.listSort.key === key ? -S.listSort.dir : 1 };
      renderListAtOnce();
    });
  });
  [["list-class", "cls"], ["list-decision", "decision"], ["list-agreement", "agreement"], ["list-min-score", "minScore"]].forEach(function (pair) {
    var el = $(pair[0]);
    if (!el) { return; }
    el.addEventListener(el.tagName === "SELECT" ? "change" : "input", function () {
      S.listFilter[pair[1]] = pair[1] === "minScore" ? (parseFloat(el.value) || 0) : el.value;
      renderListAtOnce();
    });
  });
  bindClick("img-prev", function () { gotoImage(-1); });
  bindClick("img-next", function () { gotoImage(1); });
  var reclass = $("sel-reclass");
  if (reclass) {
    reclass.addEventListener("change", function () {
      if (S.selected && reclass.value) { decide(S.selected, "accept", reclass.value); }
      reclass.value = "";
    });
  }
  ["accept", "reject", "uncertain"].forEach(function (v) {
    bindClick("adj-" + v, function () { if (S.selected) { adjudicate(S.selected, v, $("adj-class").value); } });
  });
  bindClick("adj-clear", function () { if (S.selected) { adjudicate(S.selected, null, ""); } });

  var slider = $("score-threshold");
  function onThreshold() {
    S.threshold = parseFloat(slider.value);
    $("score-threshold-value").textContent = S.threshold.toFixed(2);
    recomputeVisible(); updateAgreement(); renderListAtOnce(); requestRender();
  }
  /* The threshold is the reviewer's: kept by the server, so the session page counts the same cells. */
  function saveThreshold() {
    var value = S.threshold;
    enqueue(function () {
      return api("PUT", cfg.apiThreshold, { threshold: value }).catch(function (e) {
        setStatus(gettext("Threshold not saved:") + " " + e.message, true);
      });
    });
  }
  slider.addEventListener("input", onThreshold);
  slider.addEventListener("change", function () { if (S.data) { saveThreshold(); } });

  document.querySelectorAll("input[data-class-toggle]").forEach(function (cb) {
    cb.addEventListener("change", function () {
      S.hidden[cb.getAttribute("data-class-toggle")] = !cb.checked;
      recomputeVisible(); requestRender();
    });
  });
  var labels = $("show-labels");
  if (labels) { labels.addEventListener("change", function () { S.showLabels = labels.checked; requestRender(); }); }
  var fills = $("show-fill");
  if (fills) { fills.addEventListener("change", function () { S.showFill = fills.checked; requestRender(); }); }

  if (window.ResizeObserver) { new ResizeObserver(resize).observe(wrap); } else { window.addEventListener("resize", resize); }

  // ---------------------------------------------------------------- load
  function loadBitmap(url) {
    return fetch(url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error("image " + r.status); }
      return r.blob();
    }).then(function (blob) { return window.createImageBitmap ? createImageBitmap(blob) : blobImage(blob); });
  }
  function blobImage(blob) {
    return new Promise(function (resolve, reject) {
      var im = new Image(); im.onload = function () { resolve(im); }; im.onerror = reject; im.src = URL.createObjectURL(blob);
    });
  }

  resize();
  setTool("select");
  slider.value = String(S.threshold);
  $("score-threshold-value").textContent = S.threshold.toFixed(2);
  setStatus(gettext("Loading…"));
  /* Large images: a reduced preview is painted first and replaced by the full-resolution PNG when decoded. */
  var apiP = api("GET", cfg.apiImage).then(function (d) { S.stats.apiMs = performance.now() - t0; return d; });
  var fullP = loadBitmap(cfg.displayUrl).then(function (b) { S.stats.imageMs = performance.now() - t0; return b; });
  var firstP = cfg.previewUrl ? Promise.race([
    loadBitmap(cfg.previewUrl).then(function (b) { S.stats.previewMs = performance.now() - t0; return { bmp: b, full: false }; }),
    fullP.then(function (b) { return { bmp: b, full: true }; })
  ]).catch(function () { return fullP.then(function (b) { return { bmp: b, full: true }; }); })
    : fullP.then(function (b) { return { bmp: b, full: true }; });
  firstP = firstP.catch(function (e) { setStatus(gettext("Image not shown:") + " " + e.message, true); return { bmp: null, full: true }; });
  function swapFull() {
    if (S.data && S.fullBitmap && !S.bitmapFull) {
      S.bitmap = S.fullBitmap; S.bitmapFull = true; S.stats.fullMs = performance.now() - t0;
      canvas.setAttribute("data-full-resolution", "1"); requestRender();
    }
  }
  fullP.then(function (b) { S.fullBitmap = b; swapFull(); }).catch(function () {});
  Promise.all([apiP, firstP])
    .then(function (res) {
      var data = res[0];
      S.data = data; S.bitmap = res[1].bmp; S.bitmapFull = res[1].full;
      if (S.bitmapFull) { canvas.setAttribute("data-full-resolution", "1"); }
      S.classes = data.classes;
      if (data.review && typeof data.review.threshold === "number") {
        S.threshold = data.review.threshold; slider.value = String(S.threshold);
        $("score-threshold-value").textContent = S.threshold.toFixed(2);
      }
      data.classes.forEach(function (c) { S.classIndex[c.name] = c; });
      S.instances = data.instances;
      var td = performance.now();
      S.instances.forEach(function (inst) {
        S.byId[inst.id] = inst;
        if (inst.correction) { applyCorrection(inst, inst.correction); }
        else if (!isManual(inst) || !inst.polygon) { decodeCrop(inst); }
      });
      S.stats.decodeMs = performance.now() - td;
      S.stats.loadMs = performance.now() - t0;
      $("image-position").textContent = interpolate(gettext("%(position)s of %(count)s"), { position: data.image.position, count: data.image.count }, true);
      if ($("img-prev")) { $("img-prev").disabled = !data.image.prev_id; }
      if ($("img-next")) { $("img-next").disabled = !data.image.next_id; }
      resize(); fit();
      recomputeVisible(); updateAgreement();
      $("drawn-count").textContent = String(S.instances.filter(isManual).length);
      if (!data.me.can_decide) { document.body.classList.add("read-only"); }
      setStatus(data.me.can_decide ? gettext("Ready") : gettext("Read-only: you may view this session but not decide."));
      showDone();
      openDeepLink();
      render();
      S.stats.firstRenderMs = performance.now() - t0;
      swapFull();
      document.body.setAttribute("data-viewer-ready", "1");
    })
    .catch(function (e) { setStatus(gettext("Could not load the image:") + " " + e.message, true); });

  window.reviewViewer = {
    state: S, render: render, zoomAt: zoomAt, fit: fit, panBy: panBy, select: select, step: step,
    setThreshold: function (v) { slider.value = String(v); onThreshold(); saveThreshold(); },
    stepUndecided: stepUndecided, toScreen: toScreen, toImage: toImage, setTool: setTool, setBrush: setBrush,
    outlineOf: outlineOf, listRows: listRows, centerOn: centerOn
  };
})();
