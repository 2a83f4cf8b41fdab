"use strict";
/* Keyboard scoring of the validator's own list. A key always answers the cell on screen when its turn
 * comes: key presses and navigation run one after another from a queue (none is dropped while a save is
 * on its way), and the page moves on by itself only after the cell's last answer (morphology, PRM1 and
 * PNA all given), or when the validator asks for it (→, J, Next). */
(function () {
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

  function scored(c) { return c.morphology !== ""; }
  function complete(c) { return FIELDS.every(function (f) { return c[f] !== ""; }); }
  function done() { return cells.filter(scored).length; }

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
      status.textContent = "Saved.";
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
    if (pending > 0 && cfg.writable) { status.textContent = "Saving…"; }
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
