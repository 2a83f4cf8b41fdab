// Training job page: iteration, ETA and a small loss plot, polled from the JSON progress endpoint while
// the job is queued or running. CSP-safe: no inline code, no style attributes, no external library.
(function () {
  "use strict";
  const gettext = window.gettext || ((s) => s);
  const PLACEHOLDER = "00000000-0000-0000-0000-000000000000";
  const root = document.getElementById("training-progress");
  if (!root) return;

  function eta(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    const s = Math.max(0, Math.round(seconds));
    const m = Math.floor(s / 60);
    return m > 0 ? m + " " + gettext("min") + " " + (s % 60) + " " + gettext("s") : s + " " + gettext("s");
  }

  function plot(losses) {
    const line = root.querySelector(".tp-loss");
    const label = root.querySelector(".tp-loss-max");
    const values = losses.map((p) => [p.iteration, p.total_loss !== undefined ? p.total_loss : sumLosses(p)]);
    if (!values.length) { line.setAttribute("points", ""); return; }
    const maxIter = Math.max(1, values[values.length - 1][0]);
    const maxLoss = Math.max(1e-6, ...values.map((v) => v[1]));
    line.setAttribute("points", values.map((v) =>
      (30 + 360 * v[0] / maxIter).toFixed(1) + "," + (140 - 130 * v[1] / maxLoss).toFixed(1)).join(" "));
    label.textContent = maxLoss.toFixed(2);
  }

  function sumLosses(point) {
    let total = 0;
    Object.keys(point).forEach((k) => { if (k !== "iteration" && k.indexOf("loss") === 0) total += point[k]; });
    return total;
  }

  function render(data) {
    root.dataset.status = data.status;
    root.querySelector(".tp-status").textContent = gettext(data.status) + (data.stage ? " · " + gettext(data.stage) : "");
    const bar = root.querySelector(".tp-bar");
    bar.max = data.max_iter || 1;
    bar.value = data.iteration;
    root.querySelector(".tp-iteration").textContent = data.iteration + " / " + data.max_iter;
    root.querySelector(".tp-eta").textContent = eta(data.eta_seconds);
    root.querySelector(".tp-resumed").textContent = data.resumed_from.length ? data.resumed_from.join(", ") : "—";
    root.querySelector(".tp-attempts").textContent = data.attempts;
    root.querySelector(".tp-error").textContent = data.error_message || "";
    plot(data.losses || []);
    if (data.candidate_id) {
      const p = root.querySelector(".tp-candidate");
      if (!p.querySelector("a")) {
        const a = document.createElement("a");
        a.href = root.dataset.cardUrlTemplate.replace(PLACEHOLDER, data.candidate_id);
        a.textContent = gettext("Model card");
        p.appendChild(a);
      }
    }
    if (!data.active) {
      const form = root.querySelector(".tp-cancel");
      if (form) form.remove();
    }
  }

  function poll() {
    fetch(root.dataset.progressUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})  // i18n: not shown
      .then((r) => r.ok ? r.json() : Promise.reject(r.status))
      .then((data) => { render(data); if (data.active) window.setTimeout(poll, 1500); })
      .catch(() => window.setTimeout(poll, 10000));
  }
  poll();
})();
