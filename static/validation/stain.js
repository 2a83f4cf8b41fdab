"use strict";
/* The stain technician's bench (blinded: only opaque cell/field ids, positions, crops and the user's own
 * entries ever reach this page).
 *
 * - Field view: the plain brightfield on a canvas, each fluorescence channel drawn over it through its
 *   registration (a similarity transform, stain px -> field px) with its own opacity; PRM1 green, PNA
 *   magenta (a colour-blind-safe pair); the cell being called is circled.
 * - Calls by keyboard: 1-3 PRM1, 4-6 PNA, N/→ next, P/← previous, G first unfinished. Keys and navigation
 *   run one after another from a queue (none is lost while a save is on its way) and always answer the
 *   cell on screen when their turn comes; the page moves on by itself after the cell's last answer.
 * - Fluorescence images: upload per channel, automatic alignment, manual two-point registration, remove.
 * - CSV import: check (per-row errors, nothing saved), then save.
 */
(function () {
  const gettext = window.gettext || ((s) => s);
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  const api = window.validationApi;
  const cfg = api.config("stain-config");
  const CHANNELS = ["prm1", "pna"];
  const COLOURS = { prm1: [0, 200, 0], pna: [230, 0, 230] };
  const LABELS = { "": "—", pos: gettext("positive"), neg: gettext("negative"), na: gettext("unclear") };
  const METHODS = { none: gettext("not registered"), manual: gettext("two points"), auto: gettext("automatic") };

  const canvas = document.getElementById("field-canvas");
  const ctx = canvas.getContext("2d");
  const fieldSelect = document.getElementById("field-select");
  const status = document.getElementById("stain-status");
  const progressText = document.getElementById("progress-text");
  const progress = document.getElementById("progress");
  const crop = document.getElementById("crop");
  const listBody = document.querySelector("#cell-list tbody");
  const imageListBody = document.querySelector("#stain-image-list tbody");

  let cells = [];
  let fields = [];
  let current = 0;
  let fieldId = null;
  let queue = Promise.resolve();
  let pending = 0;
  const opacity = { prm1: 0.6, pna: 0.6 };
  const images = {};  // url -> HTMLImageElement (loaded)
  const tinted = {};  // stain image id -> canvas (channel colour, alpha = intensity)
  let view = 1;  // canvas px per field px
  let registering = null;  // {stainImage, stainView, points: {stain: [], field: []}}

  function setPending(delta) {
    pending += delta;
    document.body.setAttribute("data-pending", String(pending));
  }

  function enqueue(action) {
    setPending(1);
    queue = queue.then(action).catch(function (error) { status.textContent = error.message; })
      .then(function () { setPending(-1); });
    return queue;
  }

  function loadImage(url) {
    if (images[url]) { return Promise.resolve(images[url]); }
    return new Promise(function (resolve, reject) {
      const img = new Image();
      img.onload = function () { images[url] = img; resolve(img); };
      img.onerror = function () { reject(new Error(gettext("An image could not be loaded."))); };
      img.src = url;
    });
  }

  function field() { return fields.find(function (f) { return f.field === fieldId; }) || null; }
  function complete(c) { return c.prm1 !== "" && c.pna !== ""; }

  /* --- field view ------------------------------------------------------------------------------- */

  function tint(stainImage, img) {
    if (tinted[stainImage.id]) { return tinted[stainImage.id]; }
    const off = document.createElement("canvas");
    off.width = img.naturalWidth;
    off.height = img.naturalHeight;
    const octx = off.getContext("2d");
    octx.drawImage(img, 0, 0);
    const data = octx.getImageData(0, 0, off.width, off.height);
    const colour = COLOURS[stainImage.channel];
    for (let i = 0; i < data.data.length; i += 4) {
      const intensity = data.data[i];
      data.data[i] = colour[0];
      data.data[i + 1] = colour[1];
      data.data[i + 2] = colour[2];
      data.data[i + 3] = intensity;
    }
    octx.putImageData(data, 0, 0);
    tinted[stainImage.id] = off;
    return off;
  }

  function matrix(reg) {
    const rad = reg.rotation_deg * Math.PI / 180;
    const c = reg.scale * Math.cos(rad);
    const s = reg.scale * Math.sin(rad);
    return [c, s, -s, c, reg.offset_x_px, reg.offset_y_px];
  }

  function cellRadius(f) {
    return f.um_per_px ? 6 / f.um_per_px : 20;  // about a round spermatid's radius
  }

  async function drawField() {
    const f = field();
    if (!f) { return; }
    const bright = await loadImage(f.image_url);
    const maxWidth = Math.min(960, canvas.parentElement.clientWidth || 640);
    view = Math.min(1.6, maxWidth / f.width);
    canvas.width = Math.round(f.width * view);
    canvas.height = Math.round(f.height * view);
    canvas.dataset.view = String(view);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.globalAlpha = 1;
    ctx.drawImage(bright, 0, 0, canvas.width, canvas.height);
    for (const stainImage of f.stain_images) {
      if (opacity[stainImage.channel] <= 0 || stainImage.registration.method === "none") { continue; }
      const img = await loadImage(stainImage.image_url);
      const m = matrix(stainImage.registration);
      ctx.save();
      ctx.globalAlpha = opacity[stainImage.channel];
      ctx.setTransform(view * m[0], view * m[1], view * m[2], view * m[3], view * m[4], view * m[5]);
      ctx.drawImage(tint(stainImage, img), 0, 0);
      ctx.restore();
    }
    const radius = cellRadius(f) * view;
    cells.forEach(function (c, index) {
      if (c.field !== f.field) { return; }
      ctx.beginPath();
      ctx.arc(c.x_px * view, c.y_px * view, index === current ? radius : radius * 0.35, 0, 2 * Math.PI);
      if (index === current) {
        ctx.lineWidth = 4;
        ctx.strokeStyle = "#000";
        ctx.stroke();
        ctx.lineWidth = 2;
        ctx.strokeStyle = "#ffd400";
      } else {
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = complete(c) ? "rgba(255,255,255,0.9)" : "rgba(0,180,255,0.9)";
      }
      ctx.stroke();
    });
    if (registering && registering.points.field.length) {
      drawPoints(ctx, registering.points.field, view);
    }
    canvas.setAttribute("data-drawn", String(Date.now()));
  }

  function drawPoints(context, points, scale) {
    points.forEach(function (p, i) {
      context.save();
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.beginPath();
      context.arc(p[0] * scale, p[1] * scale, 6, 0, 2 * Math.PI);
      context.lineWidth = 2;
      context.strokeStyle = "#00e5ff";
      context.stroke();
      context.fillStyle = "#00e5ff";
      context.font = "bold 14px sans-serif";  // i18n: not shown
      context.fillText(String(i + 1), p[0] * scale + 8, p[1] * scale - 8);
      context.restore();
    });
  }

  function showField(id) {
    if (id === fieldId) { return drawField(); }
    fieldId = id;
    fieldSelect.value = id;
    renderImageList();
    return drawField();
  }

  /* --- calls ------------------------------------------------------------------------------------- */

  function render() {
    const done = cells.filter(complete).length;
    progress.max = Math.max(cells.length, 1);
    progress.value = done;
    progressText.textContent = interpolate(gettext("%(done)s of %(total)s cells called"),
      { done: done, total: cells.length }, true);
    listBody.querySelectorAll("tr").forEach(function (tr, index) {
      const c = cells[index];
      tr.classList.toggle("current", index === current);
      tr.classList.toggle("done", complete(c));
      tr.children[1].textContent = LABELS[c.prm1];
      tr.children[2].textContent = LABELS[c.pna];
    });
    if (!cells.length) { return Promise.resolve(); }
    const cell = cells[current];
    crop.src = cell.crop_url;
    document.getElementById("cell-id").textContent = cell.cell;
    document.getElementById("cell-pos").textContent = (current + 1) + " / " + cells.length;
    document.querySelectorAll("button[data-field]").forEach(function (button) {
      button.setAttribute("aria-pressed", cell[button.dataset.field] === button.dataset.value ? "true" : "false");
      button.disabled = !cfg.writable;
    });
    keepRowVisible(listBody.children[current]);
    return showField(cell.field);
  }

  /* Scroll the cell list (only the list, never the page) so the current row shows. */
  function keepRowVisible(row) {
    const wrap = listBody.closest(".cell-list-wrap");
    if (!row || !wrap) { return; }
    if (row.offsetTop < wrap.scrollTop + row.offsetHeight) {
      wrap.scrollTop = Math.max(0, row.offsetTop - row.offsetHeight);
    } else if (row.offsetTop + row.offsetHeight > wrap.scrollTop + wrap.clientHeight) {
      wrap.scrollTop = row.offsetTop + row.offsetHeight - wrap.clientHeight;
    }
  }

  function buildList() {
    listBody.textContent = "";
    cells.forEach(function (c, index) {
      const tr = document.createElement("tr");
      tr.dataset.cell = c.cell;
      [c.cell, "", ""].forEach(function (text) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      });
      tr.addEventListener("click", function () { enqueue(function () { current = index; return render(); }); });
      listBody.appendChild(tr);
    });
  }

  function go(delta) {
    if (!cells.length) { return Promise.resolve(); }
    current = Math.min(cells.length - 1, Math.max(0, current + delta));
    return render();
  }

  function firstUnfinished() {
    const index = cells.findIndex(function (c) { return !complete(c); });
    current = index >= 0 ? index : 0;
    return render();
  }

  /* Answer one question of the cell on screen; after its last answer, show the next cell. */
  async function set(name, value) {
    if (!cfg.writable || !cells.length) { return; }
    const index = current;
    const cell = cells[index];
    const wasComplete = complete(cell);
    const body = {};
    body[name] = value;
    status.textContent = gettext("Saving…");
    const updated = await api.call("PUT", cfg.cells_url + encodeURIComponent(cell.cell) + "/", body);
    cells[index] = updated;
    status.textContent = interpolate(gettext("Saved %(channel)s for cell %(cell)s."),
      { channel: name.toUpperCase(), cell: cell.cell }, true);
    if (!wasComplete && complete(updated) && index === current && current < cells.length - 1) { current += 1; }
    await render();
  }

  const KEYS = {
    "1": ["prm1", "pos"], "2": ["prm1", "neg"], "3": ["prm1", "na"],
    "4": ["pna", "pos"], "5": ["pna", "neg"], "6": ["pna", "na"],
  };
  document.addEventListener("keydown", function (event) {
    const tag = event.target.tagName;
    const key = event.key.toLowerCase();
    // an opacity slider keeps the focus after a drag: its arrows move it, the call keys still call
    const slider = tag === "INPUT" && event.target.type === "range" && !key.startsWith("arrow");
    if ((!slider && (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA")) ||
        event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (KEYS[key]) {
      event.preventDefault();
      enqueue(function () { return set(KEYS[key][0], KEYS[key][1]); });
    } else if (key === "n" || key === "arrowright" || key === "arrowdown") {
      event.preventDefault();
      enqueue(function () { return go(1); });
    } else if (key === "p" || key === "arrowleft" || key === "arrowup") {
      event.preventDefault();
      enqueue(function () { return go(-1); });
    } else if (key === "g") {
      event.preventDefault();
      enqueue(firstUnfinished);
    }
  });
  document.querySelectorAll("button[data-field]").forEach(function (button) {
    button.addEventListener("click", function () {
      enqueue(function () { return set(button.dataset.field, button.dataset.value); });
    });
  });
  document.getElementById("next").addEventListener("click", function () { enqueue(function () { return go(1); }); });
  document.getElementById("prev").addEventListener("click", function () { enqueue(function () { return go(-1); }); });

  /* --- overlay controls --------------------------------------------------------------------------- */

  CHANNELS.forEach(function (channel) {
    const input = document.getElementById("opacity-" + channel);
    const output = document.getElementById("opacity-" + channel + "-value");
    input.addEventListener("input", function () {
      opacity[channel] = Number(input.value) / 100;
      output.textContent = input.value + "%";
      canvas.dataset["opacity" + channel] = input.value;
      enqueue(drawField);
    });
  });
  fieldSelect.addEventListener("change", function () {
    fieldSelect.blur();  // the call keys work again at once
    enqueue(function () { return showField(fieldSelect.value); });
  });

  /* --- fluorescence images ------------------------------------------------------------------------ */

  function describeRegistration(reg) {
    if (reg.method === "none") { return METHODS.none; }
    const degrees = Math.abs(reg.rotation_deg) < 0.05 ? 0 : reg.rotation_deg;
    let text = METHODS[reg.method] + ": ×" + reg.scale.toFixed(3) + ", " + degrees.toFixed(1) + "°, (" +
      reg.offset_x_px.toFixed(1) + ", " + reg.offset_y_px.toFixed(1) + ") px";
    if (reg.method === "auto" && reg.quality !== null && reg.quality < 100) {
      text += " — " + gettext("weak match: check the overlay or register by two points");
    }
    return text;
  }

  function actionButton(label, handler) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.disabled = !cfg.writable;
    button.addEventListener("click", handler);
    return button;
  }

  function renderImageList() {
    imageListBody.textContent = "";
    const f = field();
    if (!f) { return; }
    if (!f.stain_images.length) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 4;
      td.textContent = gettext("No fluorescence image of this field yet.");
      tr.appendChild(td);
      imageListBody.appendChild(tr);
    }
    f.stain_images.forEach(function (stainImage) {
      const tr = document.createElement("tr");
      tr.dataset.channel = stainImage.channel;
      const cellsText = [stainImage.channel.toUpperCase(), stainImage.width + " × " + stainImage.height + " px" +
        (stainImage.um_per_px ? ", " + stainImage.um_per_px + " µm/px" : ""), describeRegistration(stainImage.registration)];
      cellsText.forEach(function (text, i) {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 2) { td.className = "registration"; }
        tr.appendChild(td);
      });
      const actions = document.createElement("td");
      actions.appendChild(actionButton(gettext("Align automatically"), function () {
        enqueue(function () { return registerAuto(stainImage); });
      }));
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(actionButton(gettext("Register by two points"), function () {
        enqueue(function () { return startManual(stainImage); });
      }));
      actions.appendChild(document.createTextNode(" "));
      actions.appendChild(actionButton(gettext("Remove"), function () {
        if (!window.confirm(gettext("Remove this fluorescence image?"))) { return; }
        enqueue(function () { return removeImage(stainImage); });
      }));
      tr.appendChild(actions);
      imageListBody.appendChild(tr);
    });
  }

  async function reloadFields() {
    fields = await api.call("GET", cfg.fields_url);
    fieldSelect.textContent = "";
    fields.forEach(function (f, i) {
      const option = document.createElement("option");
      option.value = f.field;
      option.textContent = interpolate(gettext("Field %(n)s (%(id)s)"), { n: i + 1, id: f.field }, true);
      fieldSelect.appendChild(option);
    });
    if (fieldId) { fieldSelect.value = fieldId; }
    renderImageList();
  }

  function replaceStainImage(updated) {
    fields.forEach(function (f) {
      f.stain_images = f.stain_images.map(function (s) { return s.id === updated.id ? updated : s; });
    });
    renderImageList();
    return drawField();
  }

  async function registerAuto(stainImage) {
    status.textContent = gettext("Aligning…");
    const updated = await api.call("PUT", stainImage.registration_url, { method: "auto" });
    status.textContent = gettext("Aligned automatically.");
    return replaceStainImage(updated);
  }

  async function removeImage(stainImage) {
    await api.call("DELETE", stainImage.url);
    delete tinted[stainImage.id];
    await reloadFields();
    status.textContent = gettext("Fluorescence image removed.");
    return drawField();
  }

  const uploadForm = document.getElementById("upload-form");
  if (uploadForm) {
    uploadForm.addEventListener("submit", function (event) {
      event.preventDefault();
      enqueue(async function () {
        const f = field();
        const data = new FormData();
        data.append("channel", document.getElementById("upload-channel").value);
        data.append("file", document.getElementById("upload-file").files[0]);
        const um = document.getElementById("upload-um").value;
        if (um) { data.append("um_per_px", um); }
        status.textContent = gettext("Uploading…");
        const result = await send("POST", f.upload_url, data);
        if (!result.ok) { throw new Error(result.data && result.data.message ? result.data.message : gettext("Upload failed.")); }
        uploadForm.reset();
        await reloadFields();
        status.textContent = gettext("Uploaded. Align it automatically or register it by two points.");
        return drawField();
      });
    });
  }

  /* --- manual two-point registration -------------------------------------------------------------- */

  const panel = document.getElementById("register-panel");
  const stainCanvas = document.getElementById("stain-canvas");
  const stainCtx = stainCanvas.getContext("2d");
  const stepText = document.getElementById("register-step");
  const saveButton = document.getElementById("register-save");

  function registrationStep() {
    const p = registering.points;
    if (p.stain.length === 2 && p.field.length === 2) {
      return gettext("Both point pairs are set: save the registration, or start again.");
    }
    const n = p.field.length + 1;
    if (p.stain.length === p.field.length) {
      return interpolate(gettext("Click point %(n)s on the fluorescence image (below)."), { n: n }, true);
    }
    return interpolate(gettext("Click the same point %(n)s on the field (above)."), { n: n }, true);
  }

  async function drawStain() {
    const img = await loadImage(registering.stainImage.image_url);
    const scale = Math.min(1.6, Math.min(640, panel.clientWidth || 640) / img.naturalWidth);
    registering.stainView = scale;
    stainCanvas.width = Math.round(img.naturalWidth * scale);
    stainCanvas.height = Math.round(img.naturalHeight * scale);
    stainCanvas.dataset.view = String(scale);
    stainCtx.drawImage(img, 0, 0, stainCanvas.width, stainCanvas.height);
    drawPoints(stainCtx, registering.points.stain, scale);
    stepText.textContent = registrationStep();
    saveButton.disabled = !(registering.points.stain.length === 2 && registering.points.field.length === 2);
    panel.dataset.step = String(registering.points.stain.length + registering.points.field.length);
  }

  async function startManual(stainImage) {
    registering = { stainImage: stainImage, stainView: 1, points: { stain: [], field: [] } };
    panel.hidden = false;
    await drawStain();
    await drawField();
  }

  function stopManual() {
    registering = null;
    panel.hidden = true;
    return drawField();
  }

  function pointFrom(event, target, scale) {
    const rect = target.getBoundingClientRect();
    const x = (event.clientX - rect.left) * (target.width / rect.width) / scale;
    const y = (event.clientY - rect.top) * (target.height / rect.height) / scale;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  stainCanvas.addEventListener("click", function (event) {
    if (!registering) { return; }
    const p = registering.points;
    if (p.stain.length !== p.field.length || p.stain.length >= 2) { return; }
    p.stain.push(pointFrom(event, stainCanvas, registering.stainView));
    enqueue(drawStain);
  });
  canvas.addEventListener("click", function (event) {
    if (registering) {
      const p = registering.points;
      if (p.stain.length !== p.field.length + 1) { return; }
      p.field.push(pointFrom(event, canvas, view));
      enqueue(async function () { await drawStain(); return drawField(); });
      return;
    }
    // outside registration: a click on a cell of this field makes it the cell being called
    const point = pointFrom(event, canvas, view);
    const f = field();
    let best = -1;
    let bestDistance = cellRadius(f);
    cells.forEach(function (c, index) {
      if (c.field !== f.field) { return; }
      const d = Math.hypot(c.x_px - point[0], c.y_px - point[1]);
      if (d < bestDistance) { best = index; bestDistance = d; }
    });
    if (best >= 0) { enqueue(function () { current = best; return render(); }); }
  });
  saveButton.addEventListener("click", function () {
    enqueue(async function () {
      const body = { method: "manual", stain_points: registering.points.stain, field_points: registering.points.field };
      const updated = await api.call("PUT", registering.stainImage.registration_url, body);
      registering = null;
      panel.hidden = true;
      status.textContent = gettext("Registration saved.");
      return replaceStainImage(updated);
    });
  });
  document.getElementById("register-reset").addEventListener("click", function () {
    if (!registering) { return; }
    const stainImage = registering.stainImage;
    enqueue(function () { return startManual(stainImage); });
  });
  document.getElementById("register-cancel").addEventListener("click", function () { enqueue(stopManual); });

  /* --- CSV import ---------------------------------------------------------------------------------- */

  const importForm = document.getElementById("import-form");
  const importStatus = document.getElementById("import-status");
  const importTable = document.getElementById("import-table");
  const importConfirm = document.getElementById("import-confirm");
  let importText = null;

  function csrf() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  /* fetch that keeps the error body (the per-row errors are in ``extra``). */
  async function send(method, url, body) {
    const headers = { "Accept": "application/json", "X-CSRFToken": csrf() };  // i18n: not shown
    let payload = body;
    if (!(body instanceof FormData)) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const response = await fetch(url, { method: method, headers: headers, credentials: "same-origin", body: payload });
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    return { ok: response.ok, status: response.status, data: data };
  }

  function importRows(rows, errors) {
    const body = importTable.querySelector("tbody");
    body.textContent = "";
    const lines = rows.map(function (r) {
      return { line: r.line, cell: r.cell, prm1: (r.prm1_before ? LABELS[r.prm1_before] + " → " : "") + LABELS[r.prm1 || ""],
        pna: (r.pna_before ? LABELS[r.pna_before] + " → " : "") + LABELS[r.pna || ""], problem: "" };
    }).concat(errors.map(function (e) {
      return { line: e.line, cell: e.cell, prm1: "", pna: "", problem: e.message, error: true };
    }));
    lines.sort(function (a, b) { return a.line - b.line; });
    lines.forEach(function (l) {
      const tr = document.createElement("tr");
      if (l.error) { tr.className = "error"; }
      [l.line, l.cell, l.prm1, l.pna, l.problem].forEach(function (text) {
        const td = document.createElement("td");
        td.textContent = String(text);
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    importTable.hidden = lines.length === 0;
  }

  importForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const file = document.getElementById("import-file").files[0];
    if (!file) { return; }
    enqueue(async function () {
      importConfirm.disabled = true;
      importText = await file.text();
      const result = await send("POST", cfg.import_url, { csv: importText, confirm: false });
      if (result.ok) {
        importRows(result.data.rows, []);
        importStatus.textContent = interpolate(gettext("%(n)s row(s) checked, no errors. Nothing is saved yet."),
          { n: result.data.rows.length }, true);
        importConfirm.disabled = !cfg.writable;
      } else {
        const errors = result.data && result.data.extra && result.data.extra.errors ? result.data.extra.errors : [];
        importRows([], errors);
        importStatus.textContent = result.data && result.data.message ? result.data.message : gettext("The file was refused.");
        importText = null;
      }
    });
  });
  importConfirm.addEventListener("click", function () {
    if (importText === null) { return; }
    enqueue(async function () {
      importConfirm.disabled = true;
      const result = await send("POST", cfg.import_url, { csv: importText, confirm: true });
      if (!result.ok) {
        importStatus.textContent = result.data && result.data.message ? result.data.message : gettext("The file was refused.");
        return;
      }
      importText = null;
      importStatus.textContent = interpolate(gettext("%(n)s result(s) saved."), { n: result.data.rows.length }, true);
      cells = await api.call("GET", cfg.cells_url);
      return render();
    });
  });

  /* --- start --------------------------------------------------------------------------------------- */

  enqueue(async function () {
    await reloadFields();
    cells = await api.call("GET", cfg.cells_url);
    buildList();
    if (!fields.length) {
      progressText.textContent = gettext("No field of your center in this study.");
      return;
    }
    fieldId = null;
    if (!cells.length) { await showField(fields[0].field); }
    await firstUnfinished();
    document.body.setAttribute("data-stain-ready", "1");
  });
})();
