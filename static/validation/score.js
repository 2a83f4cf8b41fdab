"use strict";
/* Keyboard scoring of the validator's own list. A key always answers the cell on screen when its turn
 * comes: key presses and navigation run one after another from a queue (none is dropped while a save is
 * on its way), and the page moves on by itself only after the cell's last answer (morphology, PRM1 and
 * PNA all given), or when the validator asks for it (→, J, Next). */
(function () {
  const gettext = window.gettext || ((t) => t);
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  const api = window.validationApi;
  const cfg = api.config("score-config");
  const img = document.getElementById("crop");
  const status = document.getElementById("score-status");
  const progressText = document.getElementById("progress-text");
  const progress = document.getElementById("progress");
  const FIELDS = ["morphology", "prm1", "pna"];
  let cells = [];
  let current = 0;
  let queue = Promise.resolve();
  let pending = 0;
  let fieldTimer = 0;

  /* The whole field around the cell on screen, zoomable and pannable, with a ring on that cell and a scale
   * bar. It draws the plain field image only: no overlay, class or score (the context endpoint has none). */
  const fieldView = (function () {
    const canvas = document.getElementById("field-canvas");
    if (!canvas) { return { show: function () {} }; }
    const wrap = document.getElementById("field-wrap");
    const ctx = canvas.getContext("2d");
    const bitmaps = new Map();
    const contexts = new Map();
    const V = { ctx: null, bitmap: null, scale: 1, tx: 0, ty: 0, cw: 0, ch: 0, drag: null, fitted: null };

    function resize() {
      const r = wrap.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
      V.cw = Math.max(100, Math.floor(r.width)); V.ch = Math.max(100, Math.floor(r.height));
      canvas.width = Math.floor(V.cw * dpr); canvas.height = Math.floor(V.ch * dpr);
      canvas.style.width = V.cw + "px"; canvas.style.height = V.ch + "px";
      draw();
    }
    function fit() {
      if (!V.ctx) { return; }
      V.scale = Math.min(V.cw / V.ctx.width, V.ch / V.ctx.height);
      V.tx = (V.cw - V.ctx.width * V.scale) / 2; V.ty = (V.ch - V.ctx.height * V.scale) / 2;
      draw();
    }
    function toCell() {
      if (!V.ctx) { return; }
      const um = V.ctx.um_per_px, side = um ? 40 / um : 200;
      V.scale = Math.min(V.cw, V.ch) / side;
      V.tx = V.cw / 2 - V.ctx.marker.x_px * V.scale; V.ty = V.ch / 2 - V.ctx.marker.y_px * V.scale;
      draw();
    }
    function zoom(f, sx, sy) {
      if (sx === undefined) { sx = V.cw / 2; sy = V.ch / 2; }
      const ns = Math.min(40, Math.max(0.02, V.scale * f)), k = ns / V.scale;
      V.tx = sx - (sx - V.tx) * k; V.ty = sy - (sy - V.ty) * k; V.scale = ns; draw();
    }
    function niceLength(umPerScreenPx) {
      const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
      for (const s of steps) { if (s / umPerScreenPx >= 60) { return s; } }
      return steps[steps.length - 1];
    }
    function draw() {
      const dpr = window.devicePixelRatio || 1;
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#20242b"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      if (!V.ctx) { return; }
      ctx.setTransform(dpr * V.scale, 0, 0, dpr * V.scale, dpr * V.tx, dpr * V.ty);
      if (V.bitmap) { ctx.imageSmoothingEnabled = V.scale < 2; ctx.drawImage(V.bitmap, 0, 0, V.ctx.width, V.ctx.height); }
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      const um = V.ctx.um_per_px;
      const mx = V.ctx.marker.x_px * V.scale + V.tx, my = V.ctx.marker.y_px * V.scale + V.ty;
      const r = Math.max(10, (um ? 6 / um : 30) * V.scale);
      ctx.lineWidth = 4; ctx.strokeStyle = "#000";
      ctx.beginPath(); ctx.arc(mx, my, r, 0, 2 * Math.PI); ctx.stroke();
      ctx.lineWidth = 2; ctx.strokeStyle = "#ffd400";
      ctx.beginPath(); ctx.arc(mx, my, r, 0, 2 * Math.PI); ctx.stroke();
      [[-1, 0], [1, 0], [0, -1], [0, 1]].forEach(function (d) {
        ctx.beginPath(); ctx.moveTo(mx + d[0] * (r + 3), my + d[1] * (r + 3)); ctx.lineTo(mx + d[0] * (r + 12), my + d[1] * (r + 12)); ctx.stroke();
      });
      const label = document.getElementById("field-scale");
      if (!um) { label.textContent = gettext("no pixel size"); return; }
      const len = niceLength(um / V.scale), px = len / um * V.scale, x = 14, y = V.ch - 16;
      ctx.fillStyle = "rgba(0,0,0,0.6)"; ctx.fillRect(x - 6, y - 22, px + 12, 30);
      ctx.fillStyle = "#fff"; ctx.fillRect(x, y, px, 4);
      ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "bottom";  // i18n: not shown
      ctx.fillText(len + " µm", x + px / 2, y - 3); ctx.textAlign = "start";
      label.textContent = len + " µm";
      canvas.setAttribute("data-marker", Math.round(mx) + "," + Math.round(my));
    }
    function bitmapOf(url) {
      if (!bitmaps.has(url)) {
        bitmaps.set(url, fetch(url, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) { throw new Error(interpolate(gettext("The field image did not load (HTTP %(status)s)."), { status: r.status }, true)); }
          return r.blob();
        }).then(function (b) { return createImageBitmap(b); }));
      }
      return bitmaps.get(url);
    }
    async function show(cell, url) {
      canvas.setAttribute("data-field-ready", "0");
      if (!contexts.has(cell)) { contexts.set(cell, api.call("GET", url)); }
      try {
        const c = await contexts.get(cell);
        const bitmap = await bitmapOf(c.image_url);
        const sameField = V.ctx && V.ctx.field === c.field;
        V.ctx = c; V.bitmap = bitmap;
        if (!sameField) { fit(); } else { draw(); }
        canvas.setAttribute("data-field-ready", "1");
        canvas.setAttribute("data-cell", cell);
      } catch (error) {
        document.getElementById("field-scale").textContent = gettext("Field not shown:") + " " + error.message;
      }
    }
    canvas.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      const r = canvas.getBoundingClientRect();
      zoom(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    canvas.addEventListener("mousedown", function (ev) { V.drag = [ev.clientX, ev.clientY]; });
    window.addEventListener("mousemove", function (ev) {
      if (!V.drag) { return; }
      V.tx += ev.clientX - V.drag[0]; V.ty += ev.clientY - V.drag[1]; V.drag = [ev.clientX, ev.clientY]; draw();
    });
    window.addEventListener("mouseup", function () { V.drag = null; });
    document.getElementById("field-zoom-in").addEventListener("click", function () { zoom(1.25); });
    document.getElementById("field-zoom-out").addEventListener("click", function () { zoom(0.8); });
    document.getElementById("field-fit").addEventListener("click", fit);
    document.getElementById("field-cell").addEventListener("click", toCell);
    if (window.ResizeObserver) { new ResizeObserver(resize).observe(wrap); } else { window.addEventListener("resize", resize); }
    resize();
    return { show: show, zoom: zoom, fit: fit, toCell: toCell, state: V };
  })();
  window.fieldView = fieldView;

  function scored(c) { return c.morphology !== ""; }
  function complete(c) { return FIELDS.every(function (f) { return c[f] !== ""; }); }
  function done() { return cells.filter(scored).length; }

  function render() {
    progress.max = Math.max(cells.length, 1);
    progress.value = done();
    progressText.textContent = interpolate(gettext("%(done)s of %(total)s cells scored"), { done: done(), total: cells.length }, true);
    if (!cells.length) { return; }
    const cell = cells[current];
    img.src = cell.crop_url;
    // the field follows once the cell stays on screen a moment (no request per key while keying fast)
    clearTimeout(fieldTimer);
    fieldTimer = setTimeout(function () {
      fieldView.show(cell.cell, cfg.cells_url + encodeURIComponent(cell.cell) + "/context/");
    }, 150);
    document.getElementById("cell-id").textContent = cell.cell;
    document.getElementById("cell-pos").textContent = (current + 1) + " / " + cells.length;
    document.querySelectorAll("button[data-field]").forEach(function (button) {
      const pressed = cell[button.dataset.field] === button.dataset.value;
      button.setAttribute("aria-pressed", pressed ? "true" : "false");
      button.disabled = !cfg.writable;
    });
  }

  function go(delta) {
    if (!cells.length) { return; }
    current = Math.min(cells.length - 1, Math.max(0, current + delta));
    render();
  }

  function firstUnscored() {
    const index = cells.findIndex(function (c) { return !complete(c); });
    current = index >= 0 ? index : 0;
    render();
  }

  /* Answer one question of the cell on screen; after its last answer, show the next cell. */
  async function set(field, value) {
    if (!cfg.writable || !cells.length) { return; }
    const index = current;
    const cell = cells[index];
    const wasComplete = complete(cell);
    const body = {};
    body[field] = value;
    try {
      const updated = await api.call("PUT", cfg.cells_url + encodeURIComponent(cell.cell) + "/", body);
      cells[index] = updated;
      status.textContent = gettext("Saved.");
      if (!wasComplete && complete(updated) && index === current && current < cells.length - 1) { current += 1; }
      render();
    } catch (error) {
      status.textContent = error.message;
    }
  }

  /* Run actions in the order the keys were pressed. */
  function enqueue(action) {
    pending += 1;
    document.body.setAttribute("data-pending", String(pending));
    if (pending > 0 && cfg.writable) { status.textContent = gettext("Saving…"); }
    queue = queue.then(action).catch(function (error) { status.textContent = error.message; }).then(function () {
      pending -= 1;
      document.body.setAttribute("data-pending", String(pending));
    });
  }

  const keys = {
    y: ["morphology", "yes"], n: ["morphology", "no"], u: ["morphology", "unsure"],
    "1": ["prm1", "pos"], "2": ["prm1", "neg"], "3": ["prm1", "na"],
    "4": ["pna", "pos"], "5": ["pna", "neg"], "6": ["pna", "na"],
  };
  document.addEventListener("keydown", function (event) {
    if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    const key = event.key.toLowerCase();
    if (keys[key]) { event.preventDefault(); enqueue(function () { return set(keys[key][0], keys[key][1]); }); }
    else if (key === "arrowright" || key === "j") { event.preventDefault(); enqueue(function () { go(1); }); }
    else if (key === "arrowleft" || key === "k") { event.preventDefault(); enqueue(function () { go(-1); }); }
    else if (key === "g") { event.preventDefault(); enqueue(firstUnscored); }
    else if (key === "+" || key === "=") { event.preventDefault(); fieldView.zoom(1.25); }
    else if (key === "-") { event.preventDefault(); fieldView.zoom(0.8); }
    else if (key === "0") { event.preventDefault(); fieldView.fit(); }
    else if (key === "c") { event.preventDefault(); fieldView.toCell(); }
  });
  document.querySelectorAll("button[data-field]").forEach(function (button) {
    button.addEventListener("click", function () {
      enqueue(function () { return set(button.dataset.field, button.dataset.value); });
    });
  });
  document.getElementById("next").addEventListener("click", function () { enqueue(function () { go(1); }); });
  document.getElementById("prev").addEventListener("click", function () { enqueue(function () { go(-1); }); });

  enqueue(function () {
    return api.call("GET", cfg.cells_url).then(function (data) {
      cells = data.cells;
      firstUnscored();
      document.body.setAttribute("data-score-ready", "1");
    });
  });
})();
