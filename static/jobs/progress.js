// Session page: analysis status and per-image progress, polled from the JSON endpoint while a job is
// queued or running (no reload, no extra server). CSP-safe: no inline code, no style attributes.
(function () {
  "use strict";
  const gettext = window.gettext || ((s) => s);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  var JOB_STATUS = {
    queued: gettext("Queued"), running: gettext("Running"), succeeded: gettext("Succeeded"),
    failed: gettext("Failed"), cancelled: gettext("Cancelled")
  };
  var PLACEHOLDER = "00000000-0000-0000-0000-000000000000";
  var FAST_MS = 2000, SLOW_MS = 15000;

  function csrfToken(root) {
    var input = root.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }

  function render(root, data) {
    var list = root.querySelector(".session-jobs-list");
    list.textContent = "";
    if (!data.jobs.length) {
      list.appendChild(el("p", gettext("No analysis yet."), "hint"));
      return;
    }
    var table = el("table");
    var head = el("tr");
    [gettext("Started"), gettext("Model"), gettext("Status"), gettext("Progress"), gettext("Images"), ""].forEach(function (h) {
      var th = el("th", h); th.scope = "col"; head.appendChild(th);
    });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var body = el("tbody");
    data.jobs.forEach(function (job) {
      var row = el("tr");
      row.dataset.jobId = job.id;
      row.dataset.status = job.status;
      // the page's language, the session's center's zone (named), as the server-rendered times
      var link = el("a", new Date(job.created_at).toLocaleString(document.documentElement.lang || undefined,
        {timeZone: root.dataset.timeZone || "UTC", timeZoneName: "short"}));
      link.href = root.dataset.jobUrlTemplate.replace(PLACEHOLDER, job.id);
      var started = el("td"); started.appendChild(link); row.appendChild(started);
      row.appendChild(el("td", job.model_version));
      var status = (JOB_STATUS[job.status] || job.status) +
        (job.cancel_requested && job.status === "running" ? gettext(" (cancelling)") : "");
      var statusCell = el("td", status, "job-status job-" + job.status);  // i18n: not shown
      if (job.error_message) statusCell.appendChild(el("div", job.error_message, "error"));
      // images analysed at an unknown or untrained pixel size: a visible warning, not a silent answer
      var warned = job.images.filter(function (img) { return img.scale_warning; });
      if (warned.length) {
        var noteText = interpolate(ngettext("%(count)s image with a scale warning: %(warning)s",
          "%(count)s images with a scale warning: %(warning)s (see the images)", warned.length),
          {count: warned.length, warning: warned[0].scale_warning}, true);
        var note = el("div", noteText, "flag scale-warning");  // i18n: not shown
        note.setAttribute("role", "note");
        statusCell.appendChild(note);
      }
      row.appendChild(statusCell);
      var progress = el("progress");
      progress.max = Math.max(job.images_total, 1);
      progress.value = job.images_done;
      var pcell = el("td"); pcell.appendChild(progress);
      pcell.appendChild(el("span", " " + job.images_done + " / " + job.images_total, "job-count"));
      row.appendChild(pcell);
      var details = el("details"); details.appendChild(el("summary", interpolate(ngettext("%(count)s image", "%(count)s images", job.images.length), {count: job.images.length}, true)));
      var ul = el("ul", null, "job-images");
      job.images.forEach(function (img) {
        var li = el("li", img.image_id.slice(0, 8) + ": " + (IMAGE_STATUS[img.status] ? IMAGE_STATUS[img.status][1] : img.status), "image-" + img.status);
        if (img.scale_warning) li.appendChild(el("div", img.scale_warning, "flag scale-warning"));  // i18n: not shown
        ul.appendChild(li);
      });
      details.appendChild(ul);
      var icell = el("td"); icell.appendChild(details); row.appendChild(icell);
      var actions = el("td");
      if ((job.status === "queued" || job.status === "running") && !job.cancel_requested) {
        var button = el("button", gettext("Cancel")); button.type = "button";
        button.addEventListener("click", function () { cancel(root, job.id); });
        actions.appendChild(button);
      }
      row.appendChild(actions);
      body.appendChild(row);
    });
    table.appendChild(body);
    list.appendChild(table);
  }

  /* The image cards of the page follow their newest job's per-image status (cancelled jobs aside). */
  var IMAGE_STATUS = {
    pending: ["queued", gettext("Queued for analysis")], running: ["analyzing", gettext("Analyzing")],
    done: ["analyzed", gettext("Analyzed")], failed: ["failed", gettext("Analysis failed")]
  };
  function updateImageCards(data) {
    var seen = {};
    data.jobs.forEach(function (job) {  // newest first
      if (job.status === "cancelled") return;
      job.images.forEach(function (img) {
        if (seen[img.image_id] || !IMAGE_STATUS[img.status]) return;
        seen[img.image_id] = true;
        var card = document.querySelector(".thumb[data-image-id='" + img.image_id + "'] .image-status");
        if (!card) return;
        card.dataset.status = IMAGE_STATUS[img.status][0];
        card.textContent = IMAGE_STATUS[img.status][1];
      });
    });
  }

  function cancel(root, jobId) {
    fetch(root.dataset.cancelUrlTemplate.replace(PLACEHOLDER, jobId), {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": csrfToken(root), "Content-Type": "application/json"}, body: "{}"
    }).then(function () { poll(root, true); });
  }

  function poll(root, once) {
    fetch(root.dataset.progressUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})  // i18n: not shown
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        render(root, data);
        updateImageCards(data);
        if (!once) schedule(root, data.active ? FAST_MS : SLOW_MS);
      })
      .catch(function () { if (!once) schedule(root, SLOW_MS); });
  }

  function schedule(root, ms) {
    clearTimeout(root._pollTimer);
    root._pollTimer = setTimeout(function () { poll(root, false); }, ms);
  }

  function start() {
    document.querySelectorAll(".session-jobs[data-progress-url]").forEach(function (root) { poll(root, false); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
