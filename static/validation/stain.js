"use strict";
(function () {
  const api = window.validationApi;
  const cfg = api.config("stain-config");
  const body = document.querySelector("#stain-table tbody");
  const status = document.getElementById("stain-status");
  const choices = [["", "—"], ["pos", "+"], ["neg", "−"], ["na", "not assessable"]];

  function select(cell, field) {
    const el = document.createElement("select");
    el.setAttribute("aria-label", field.toUpperCase() + " for cell " + cell.cell);
    choices.forEach(function (c) {
      const option = document.createElement("option");
      option.value = c[0];
      option.textContent = c[1];
      option.selected = cell[field] === c[0];
      el.appendChild(option);
    });
    el.disabled = !cfg.writable;
    el.addEventListener("change", async function () {
      const payload = {};
      payload[field] = el.value;
      try {
        await api.call("PUT", cfg.cells_url + encodeURIComponent(cell.cell) + "/", payload);
        status.textContent = "Saved " + field.toUpperCase() + " for " + cell.cell + ".";
      } catch (error) { status.textContent = error.message; }
    });
    return el;
  }

  api.call("GET", cfg.cells_url).then(function (cells) {
    cells.forEach(function (cell) {
      const tr = document.createElement("tr");
      const id = document.createElement("td");
      id.textContent = cell.cell;
      const crop = document.createElement("td");
      const img = document.createElement("img");
      img.src = cell.crop_url;
      img.alt = "Cell " + cell.cell;
      img.className = "stain-crop";
      crop.appendChild(img);
      const prm1 = document.createElement("td");
      prm1.appendChild(select(cell, "prm1"));
      const pna = document.createElement("td");
      pna.appendChild(select(cell, "pna"));
      [id, crop, prm1, pna].forEach(function (td) { tr.appendChild(td); });
      body.appendChild(tr);
    });
  }).catch(function (error) { status.textContent = error.message; });
})();
