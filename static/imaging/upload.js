// Upload page: drag and drop (or choose) files, send them to the upload API, list the outcome per file.
(function () {
  "use strict";
  const gettext = window.gettext || ((s) => s);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  var ACTIVATE_KEYS = ["Enter", " "];  // i18n: not shown
  var config = JSON.parse(document.getElementById("upload-config").textContent);
  var form = document.getElementById("upload-form");
  var input = document.getElementById("files");
  var zone = document.getElementById("dropzone");
  var statusBox = document.getElementById("upload-status");
  var results = document.getElementById("upload-results");
  var pending = [];

  function csrfToken() {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function addFiles(list) {
    for (var i = 0; i < list.length; i++) { pending.push(list[i]); }
    statusBox.textContent = interpolate(ngettext("%(count)s file ready to upload.", "%(count)s files ready to upload.", pending.length), {count: pending.length}, true);
  }

  function item(text, cls) {
    var li = document.createElement("li");
    li.className = cls;
    li.textContent = text;
    results.appendChild(li);
  }

  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    if (event.dataTransfer && event.dataTransfer.files) { addFiles(event.dataTransfer.files); }
  });
  zone.addEventListener("keydown", function (event) {
    if (ACTIVATE_KEYS.indexOf(event.key) >= 0) { event.preventDefault(); input.click(); }
  });
  input.addEventListener("change", function () { pending = []; addFiles(input.files); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!pending.length) { statusBox.textContent = gettext("Choose or drop at least one file."); return; }
    if (pending.length > config.maxFiles) {
      statusBox.textContent = interpolate(gettext("At most %(count)s files per upload."), {count: config.maxFiles}, true); return;
    }
    var data = new FormData();
    pending.forEach(function (file) { data.append("files", file, file.name); });
    statusBox.textContent = interpolate(ngettext("Uploading %(count)s file…", "Uploading %(count)s files…", pending.length), {count: pending.length}, true);
    results.textContent = "";
    document.getElementById("upload-button").disabled = true;
    fetch(config.uploadUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }  // i18n: not shown
    }).then(function (response) {
      return response.json().catch(function () { return { message: interpolate(gettext("Upload failed (%(status)s)."), {status: response.status}, true) }; });
    }).then(function (body) {
      statusBox.textContent = body.message || gettext("Done.");
      (body.created || []).forEach(function (image) {
        var facts = {id: image.id, width: image.width, height: image.height, depth: image.bit_depth};
        item(interpolate(image.needs_um_per_px
          ? gettext("Stored: image %(id)s (%(width)s×%(height)s, %(depth)s-bit, pixel size unknown: set it on the session page)")
          : gettext("Stored: image %(id)s (%(width)s×%(height)s, %(depth)s-bit)"), facts, true), "ok");
      });
      (body.errors || []).forEach(function (error) { item(interpolate(gettext("Refused: %(message)s"), {message: error.message}, true), "refused"); });
      pending = [];
      input.value = "";
    }).catch(function () {
      statusBox.textContent = gettext("The upload could not be sent. Check your connection and try again.");
    }).finally(function () {
      document.getElementById("upload-button").disabled = false;
    });
  });
}());
