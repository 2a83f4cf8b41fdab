"use strict";
/* Picking (embryologist, draft) and missed cells (validator, whole field) on images without overlay. */
(function () {
  const gettext = window.gettext || ((s) => s);
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  const api = window.validationApi;
  const cfg = api.config("pick-config");
  const container = document.getElementById("fields");
  const status = document.getElementById("pick-status");
  const wraps = {};

  function addMarker(fieldId, x, y, pickId) {
    const entry = wraps[fieldId];
    const marker = document.createElement("button");
    marker.type = "button";
    marker.className = "marker";
    marker.setAttribute("aria-label", interpolate(gettext("Point at %(x)s, %(y)s"), {x: Math.round(x), y: Math.round(y)}, true));
    marker.style.left = (100 * x / entry.width) + "%";
    marker.style.top = (100 * y / entry.height) + "%";
    if (cfg.mode === "pick" && pickId !== undefined) {
      marker.addEventListener("click", async function (event) {
        event.stopPropagation();
        try {
          await api.call("DELETE", cfg.list_url + pickId + "/");
          marker.remove();
          status.textContent = gettext("Pick removed.");
        } catch (error) { status.textContent = error.message; }
      });
    }
    entry.wrap.appendChild(marker);
  }

  cfg.fields.forEach(function (field) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    const img = document.createElement("img");
    img.src = field.image_url;
    img.alt = interpolate(gettext("Image %(field)s"), {field: field.field}, true);
    img.width = field.width;
    img.height = field.height;
    wrap.appendChild(img);
    container.appendChild(wrap);
    wraps[field.field] = { wrap: wrap, width: field.width, height: field.height };
    img.addEventListener("click", async function (event) {
      const rect = img.getBoundingClientRect();
      const x = (event.clientX - rect.left) * field.width / rect.width;
      const y = (event.clientY - rect.top) * field.height / rect.height;
      try {
        if (cfg.mode === "pick") {
          const pick = await api.call("POST", cfg.list_url, { field: field.field, x_px: x, y_px: y });
          addMarker(field.field, pick.x_px, pick.y_px, pick.id);
          status.textContent = gettext("Pick added.");
        } else {
          const cell = await api.call("POST", field.post_url, { x_px: x, y_px: y });
          addMarker(field.field, x, y);
          status.textContent = interpolate(gettext("Cell %(cell)s added to your list."), {cell: cell.cell}, true);
        }
      } catch (error) { status.textContent = error.message; }
    });
  });

  if (cfg.mode === "pick") {
    api.call("GET", cfg.list_url).then(function (picks) {
      picks.forEach(function (p) { if (wraps[p.field]) { addMarker(p.field, p.x_px, p.y_px, p.id); } });
    }).catch(function (error) { status.textContent = error.message; });
  }
})();
