"use strict";
/* Shared helpers of the validation pages (CSP: no inline script; data from json_script). */
window.validationApi = (function () {
  const gettext = window.gettext || ((s) => s);
  const interpolate = window.interpolate || ((fmt, obj) => fmt.replace(/%\((\w+)\)s/g, (m, k) => String(obj[k])));
  function csrf() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  async function call(method, url, body) {
    const options = { method: method, headers: { "Accept": "application/json" }, credentials: "same-origin" };  // i18n: not shown
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.headers["X-CSRFToken"] = csrf();
      options.body = JSON.stringify(body);
    } else if (method !== "GET") {
      options.headers["X-CSRFToken"] = csrf();
    }
    const response = await fetch(url, options);
    let data = null;
    if (response.status !== 204) {
      try { data = await response.json(); } catch (e) { data = null; }
    }
    if (!response.ok) {
      const message = data && data.message ? data.message : interpolate(gettext("Request failed (%(status)s)"), {status: response.status}, true);
      throw new Error(message);
    }
    return data;
  }
  function config(id) { return JSON.parse(document.getElementById(id).textContent); }
  return { call: call, config: config };
})();
