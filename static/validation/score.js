"use strict";
(function () {
  const api = window.validationApi;
  const cfg = api.config("score-config");
  const img = document.getElementById("crop");
  const status = document.getElementById("score-status");
  const progressText = document.getElementById("progress-text");
  const progress = document.getElementById("progress");
  let cells = [];
  let current = 0;
  let busy = false;

  function done() { return cells.filter(function (c) { return c.morphology !== ""; }).length; }

  function render() {
    progress.max = Math.max(cells.length, 1);
    progress.value = done();
    progressText.textContent = done() + " of " + cells.length + " cells scored";
    if (!cells.length) { return; }
    const cell = cells[current];
    img.src = cell.crop_url;
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
    const index = cells.findIndex(function (c) { return c.morphology === ""; });
    current = index >= 0 ? index : 0;
    render();
  }

  async function set(field, value) {
    if (!cfg.writable || busy || !cells.length) { return; }
    const cell = cells[current];
    busy = true;
    status.textContent = "Saving…";
    try {
      const body = {};
      body[field] = value;
      const updated = await api.call("PUT", cfg.cells_url + encodeURIComponent(cell.cell) + "/", body);
      cells[current] = updated;
      status.textContent = "Saved.";
      render();
      if (field === "morphology" && current < cells.length - 1) { go(1); }
    } catch (error) {
      status.textContent = error.message;
    } finally {
      busy = false;
    }
  }

  const keys = {
    y: ["morphology", "yes"], n: ["morphology", "no"], u: ["morphology", "unsure"],
    "1": ["prm1", "pos"], "2": ["prm1", "neg"], "3": ["prm1", "na"],
    "4": ["pna", "pos"], "5": ["pna", "neg"], "6": ["pna", "na"],
  };
  document.addEventListener("keydown", function (event) {
    if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    const key = event.key.toLowerCase();
    if (keys[key]) { event.preventDefault(); set(keys[key][0], keys[key][1]); }
    else if (key === "arrowright" || key === "j") { event.preventDefault(); go(1); }
    else if (key === "arrowleft" || key === "k") { event.preventDefault(); go(-1); }
    else if (key === "g") { event.preventDefault(); firstUnscored(); }
  });
  document.querySelectorAll("button[data-field]").forEach(function (button) {
    button.addEventListener("click", function () { set(button.dataset.field, button.dataset.value); });
  });
  document.getElementById("next").addEventListener("click", function () { go(1); });
  document.getElementById("prev").addEventListener("click", function () { go(-1); });

  api.call("GET", cfg.cells_url).then(function (data) {
    cells = data.cells;
    firstUnscored();
  }).catch(function (error) { status.textContent = error.message; });
})();
