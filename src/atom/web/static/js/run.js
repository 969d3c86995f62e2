// A workflow run's page: the timeline redrawn from each live update (the whole run, from
// /live/workflow-runs/{id}). Everything shown is set with textContent; nothing is parsed as HTML.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function pretty(value) { return JSON.stringify(value, null, 2); }

  function details(label, value) {
    var box = el("details");
    box.appendChild(el("summary", null, label));
    box.appendChild(el("pre", "code", pretty(value)));
    return box;
  }

  function decisionForm(runId, key, decision, label, cls) {
    var form = el("form", "inline");
    form.method = "post";
    form.action = "/workflow-runs/" + encodeURIComponent(runId) + "/steps/" + encodeURIComponent(key) + "/" + decision;
    var token = el("input");
    token.type = "hidden";
    token.name = "csrf_token";
    token.value = window.atom.csrfToken();
    form.appendChild(token);
    var button = el("button", cls, label + " " + key);
    button.type = "submit";
    form.appendChild(button);
    return form;
  }

  function step(run, s, canApprove) {
    var item = el("li");
    item.setAttribute("data-step", s.step_key);
    item.setAttribute("data-status", s.status);
    var head = el("p");
    head.appendChild(el("strong", null, s.step_key));
    head.appendChild(document.createTextNode(" · " + (s.action || s.kind) + " · "));
    head.appendChild(el("span", "status s-" + s.status, s.status));
    if (s.attempt > 1) { head.appendChild(document.createTextNode(" · attempt " + s.attempt)); }
    item.appendChild(head);
    var times = "queued " + (s.queued_at || "—") + " · started " + (s.started_at || "—") +
      " · finished " + (s.finished_at || "—");
    if (s.duration_ms !== null && s.duration_ms !== undefined) { times += " · " + s.duration_ms + " ms"; }
    item.appendChild(el("p", "meta", times));
    if (s.error) { item.appendChild(el("p", "field-error", s.error + (s.error_code ? " (" + s.error_code + ")" : ""))); }
    if (s.input !== null && s.input !== undefined) { item.appendChild(details("Input", s.input)); }
    if (s.output !== null && s.output !== undefined) { item.appendChild(details("Output", s.output)); }
    if (s.logs && s.logs.length) { item.appendChild(details("Logs (" + s.logs.length + ")", s.logs)); }
    if (s.kind === "approval" && s.status === "waiting" && canApprove) {
      item.appendChild(decisionForm(run.id, s.step_key, "approve", "Approve", null));
      item.appendChild(decisionForm(run.id, s.step_key, "reject", "Reject", "secondary"));
    }
    return item;
  }

  function draw(root, run) {
    var canApprove = root.getAttribute("data-can-approve") === "yes";
    var status = document.getElementById("run-status");
    status.textContent = run.status;
    status.className = "status s-" + run.status;
    document.getElementById("run-error").textContent = run.error || "—";
    root.querySelectorAll("#run-actions form[data-when]").forEach(function (form) {
      form.hidden = form.getAttribute("data-when").split(" ").indexOf(run.status) < 0;
    });
    var timeline = document.getElementById("timeline");
    var open = {};
    timeline.querySelectorAll("li[data-step] details[open]").forEach(function (box) {
      open[box.parentNode.getAttribute("data-step") + ":" + box.querySelector("summary").textContent] = true;
    });
    var fresh = el("ol", "timeline");
    fresh.id = "timeline";
    run.steps.forEach(function (s) {
      var item = step(run, s, canApprove);
      item.querySelectorAll("details").forEach(function (box) {
        if (open[s.step_key + ":" + box.querySelector("summary").textContent]) { box.open = true; }
      });
      fresh.appendChild(item);
    });
    timeline.replaceWith(fresh);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("run");
    if (!root || typeof EventSource === "undefined") { return; }
    var said = document.getElementById("run-live-status");
    var source = new EventSource(root.getAttribute("data-run-live"));
    source.addEventListener("update", function (event) {
      draw(root, JSON.parse(event.data));
      root.setAttribute("data-live-state", "live");
    });
    source.addEventListener("signed_out", function () {
      source.close();
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    });
    source.onerror = function () {
      root.setAttribute("data-live-state", "reconnecting");
      said.textContent = "Reconnecting…";
    };
  });
})();
