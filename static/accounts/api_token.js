"use strict";
/* API token page: select the new key on focus and copy it with a button (CSP: no inline handlers). */
(function () {
  const gettext = window.gettext || ((s) => s);
  const input = document.getElementById("new-token");
  const button = document.getElementById("copy-token");
  const status = document.getElementById("copy-status");
  if (!input || !button) { return; }
  input.addEventListener("focus", function () { input.select(); });
  input.addEventListener("click", function () { input.select(); });
  button.addEventListener("click", async function () {
    input.focus();
    input.select();
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(input.value);
      } else if (!document.execCommand("copy")) {
        throw new Error("copy refused");  // i18n: not shown
      }
      status.textContent = gettext("Copied.");
    } catch (error) {
      status.textContent = gettext("Select the key and copy it with Ctrl+C.");
    }
  });
})();
