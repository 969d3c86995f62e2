// Live supervision: the run's steps stream in (GET /api/supervision/{id}/events; connecting counts as a
// supervisor) and the buttons send pause / resume / correct / terminate. Text goes in with textContent.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function setStatus(status) {
    var box = document.getElementById("sv-status");
    box.textContent = status;
    box.className = "status s-" + status;
  }

  // The correction must be a JSON object (the next step's params); null when it is not, with the reason shown.
  function correction(field, error) {
    var text = field.value.trim();
    var value;
    error.textContent = "";
    field.removeAttribute("aria-invalid");
    try {
      value = JSON.parse(text);
    } catch (e) {
      error.textContent = "Not valid JSON: " + e.message;
      field.setAttribute("aria-invalid", "true");
      return null;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value) || Object.keys(value).length === 0) {
      error.textContent = 'The input is a JSON object with at least one field, like {"text": "hello"}.';
      field.setAttribute("aria-invalid", "true");
      return null;
    }
    return value;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("supervision");
    if (!root || root.getAttribute("data-operator") !== "yes" || root.getAttribute("data-finished") === "yes") { return; }
    var id = root.getAttribute("data-session");
    var base = "/api/supervision/" + encodeURIComponent(id);
    var steps = document.getElementById("sv-steps");
    var live = document.getElementById("sv-live");
    var controls = document.getElementById("sv-controls");
    var field = document.getElementById("f-correction");
    var error = document.getElementById("e-correction");
    var current = {};

    function started(event) {
      var item = el("li");
      item.setAttribute("data-index", event.index);
      item.setAttribute("data-status", "running");
      item.appendChild(el("strong", null, event.action));
      item.appendChild(document.createTextNode(" "));
      item.appendChild(el("code", null, JSON.stringify(event.params)));
      item.appendChild(document.createTextNode(" · "));
      item.appendChild(el("span", "status s-running", "running"));
      steps.appendChild(item);
      current[event.index] = item;
    }

    function finished(event) {
      var item = current[event.index];
      if (!item) { started(event); item = current[event.index]; }
      item.setAttribute("data-status", event.status);
      var badge = item.querySelector(".status");
      badge.textContent = event.status;
      badge.className = "status s-" + event.status;
      if (event.error) { item.appendChild(document.createTextNode(" · " + event.error)); }
      if (event.output !== null && event.output !== undefined) {
        item.appendChild(el("pre", "code", JSON.stringify(event.output, null, 2)));
      }
    }

    var source = new EventSource(base + "/events");
    source.addEventListener("snapshot", function (e) {
      var data = JSON.parse(e.data);
      setStatus(data.status);
      root.setAttribute("data-live-state", "live");
      live.textContent = "Watching live.";
    });
    source.addEventListener("started", function () { setStatus("running"); });
    source.addEventListener("step_started", function (e) { started(JSON.parse(e.data)); });
    source.addEventListener("step_finished", function (e) { finished(JSON.parse(e.data)); });
    source.addEventListener("paused", function (e) {
      setStatus("paused");
      live.textContent = "Paused before step " + (JSON.parse(e.data).before_step + 1) + ".";
    });
    source.addEventListener("corrected", function (e) {
      live.textContent = "Step " + (JSON.parse(e.data).index + 1) + " runs with the corrected input.";
    });
    source.addEventListener("finished", function (e) {
      var data = JSON.parse(e.data);
      setStatus(data.status);
      live.textContent = "The run is " + data.status + (data.error ? ": " + data.error : ".");
      root.setAttribute("data-finished", "yes");
      if (controls) { controls.hidden = true; }
      source.close();
    });
    source.onerror = function () {
      if (root.getAttribute("data-finished") !== "yes") { live.textContent = "Reconnecting…"; }
    };

    if (!controls) { return; }
    controls.querySelectorAll("button[data-command]").forEach(function (button) {
      button.addEventListener("click", function () {
        var command = button.getAttribute("data-command");
        var body = { command: command };
        if (command === "correct") {
          var params = correction(field, error);
          if (params === null) { field.focus(); return; }
          body.params = params;
        }
        window.atom.api(base + "/commands", { method: "POST", json: body })
          .then(function (response) { return response.json().then(function (data) { return [response.ok, data]; }); })
          .then(function (result) {
            var data = result[1];
            if (!result[0]) {
              live.textContent = (data.error && data.error.message) || "The command was refused.";
              return;
            }
            document.getElementById("sv-interventions").textContent = String(data.interventions);
            setStatus(data.status);
            live.textContent = command === "correct" ? "Correction saved: the next step will use it." : "Done: " + command + ".";
          });
      });
    });
  });
})();
