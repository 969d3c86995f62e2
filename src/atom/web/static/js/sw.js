// Atom's service worker: caches the application shell (our CSS, JS, icons, an offline page) and
// nothing else. Pages, /api and /live are never cached: they hold people's data and CSRF tokens.
"use strict";
var CACHE = "atom-shell-v1";
var SHELL = [
  "/static/css/atom.css",
  "/static/js/atom.js",
  "/static/icons/atom.svg",
  "/static/icons/maskable.svg",
  "/static/manifest.webmanifest",
  "/static/offline.html"
];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); }));
  self.skipWaiting();
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (SHELL.indexOf(url.pathname) !== -1) {
    // The shell: network first (so an upgrade shows at once), the cached copy when offline.
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put(url.pathname, copy); });
      }
      return response;
    }).catch(function () { return caches.match(url.pathname); }));
    return;
  }
  if (request.mode === "navigate") {
    // Pages: always from the network, never stored; offline, the static offline page.
    event.respondWith(fetch(request).catch(function () { return caches.match("/static/offline.html"); }));
  }
  // Everything else (/api, /live, ...) goes to the network untouched.
});
