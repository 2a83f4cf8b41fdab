// Upload page: drag and drop (or choose) files, send them to the upload API, list the outcome per file.
(function () {
  "use strict";
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
    statusBox.textContent = pending.length + " file(s) ready to upload.";
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
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  input.addEventListener("change", function () { pending = []; addFiles(input.files); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!pending.length) { statusBox.textContent = "Choose or drop at least one file."; return; }
    if (pending.length > config.maxFiles) {
      statusBox.textContent = "At most " + config.maxFiles + " files per upload."; return;
    }
    var data = new FormData();
    pending.forEach(function (file) { data.append("files", file, file.name); });
    statusBox.textContent = "Uploading " + pending.length + " file(s)…";
    results.textContent = "";
    document.getElementById("upload-button").disabled = true;
    fetch(config.uploadUrl, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" }
    }).then(function (response) {
      return response.json().catch(function () { return { message: "Upload failed (" + response.status + ")." }; });
    }).then(function (body) {
      statusBox.textContent = body.message || "Done.";
      (body.created || []).forEach(function (image) {
        item("Stored: image " + image.id + " (" + image.width + "×" + image.height + ", " + image.bit_depth +
             "-bit" + (image.needs_um_per_px ? ", pixel size unknown: set it on the session page" : "") + ")", "ok");
      });
      (body.errors || []).forEach(function (error) { item("Refused: " + error.message, "refused"); });
      pending = [];
      input.value = "";
    }).catch(function () {
      statusBox.textContent = "The upload could not be sent. Check your connection and try again.";
    }).finally(function () {
      document.getElementById("upload-button").disabled = false;
    });
  });
}());
