// Swagger UI for /api/docs/, started from this file (no inline script, so the CSP needs no exception).
// The schema URL and the CSRF token come from data attributes of #swagger-ui.
"use strict";
(function () {
  const root = document.getElementById("swagger-ui");
  const csrfToken = root.dataset.csrfToken;
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // "Try it out" runs with the signed-in session: writes need Django's CSRF header.
    requestInterceptor: (request) => {
      if (request.method && request.method !== "GET" && request.method !== "HEAD") {
        request.headers["X-CSRFToken"] = csrfToken;
      }
      return request;
    },
  });
})();
