// Atom dashboard: small progressive enhancements. Every page works without this file.
// CSP: loaded from /static, no inline script, no eval, styles only through classes.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // fetch() for the /api routes with the session cookie: state-changing calls carry the CSRF header.
  function api(path, options) {
    var opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ "Accept": "application/json" }, opts.headers);
    var method = (opts.method || "GET").toUpperCase();
    if (method !== "GET" && method !== "HEAD") {
      opts.headers["X-CSRF-Token"] = csrfToken();
    }
    if (opts.json !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(opts.json);
      delete opts.json;
    }
    return fetch(path, opts);
  }

  // Live values: an element with data-live="/live/..." receives `update` events whose keys fill
  // its [data-count=key] children. EventSource reconnects by itself; each update is the whole state.
  function live(root) {
    var url = root.getAttribute("data-live");
    var status = document.querySelector("[data-live-status]");
    if (!url || typeof EventSource === "undefined") { return; }
    var source = new EventSource(url);
    source.addEventListener("update", function (event) {
      var data = JSON.parse(event.data);
      Object.keys(data).forEach(function (key) {
        root.querySelectorAll('[data-count="' + key + '"]').forEach(function (el) {
          var text = String(data[key]);
          if (el.textContent !== text) {
            el.textContent = text;
            el.classList.add("changed");
            setTimeout(function () { el.classList.remove("changed"); }, 1500);
          }
        });
      });
      root.setAttribute("data-live-state", "live");
      if (status) { status.textContent = "Counts are live."; }
    });
    source.addEventListener("signed_out", function () {
      source.close();
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    });
    source.onerror = function () {
      root.setAttribute("data-live-state", "reconnecting");
      if (status) { status.textContent = "Reconnecting…"; }
    };
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-live]").forEach(live);
  });

  // Installable as an app (PWA): the service worker caches the shell only, never pages or API data.
  if ("serviceWorker" in navigator) {
    window.addEventListener("load", function () {
      navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(function () { /* pages work without it */ });
    });
  }

  window.atom = { api: api, csrfToken: csrfToken };
})();
