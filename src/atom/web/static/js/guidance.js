// Guidance: a run's live progress (step n of m, what / why / next, what to do about each error), the chat
// page's panel that follows the running answer, and the live inbox of agent requests.
// Everything shown is set with textContent; nothing is parsed as HTML. Forms post with the CSRF token.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function hidden(name, value) {
    var input = el("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    return input;
  }

  function part(root, name) { return root.querySelector('[data-p="' + name + '"]'); }

  function follow(url, onUpdate, onState) {
    var source = new EventSource(url);
    source.addEventListener("update", function (event) { onUpdate(JSON.parse(event.data)); onState("live"); });
    source.addEventListener("signed_out", function () {
      source.close();
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    });
    source.onerror = function () { onState("reconnecting"); };
    return source;
  }

  // --- progress ------------------------------------------------------------------------------

  function resolution(g, r, canMark, back) {
    var suggested = r.id === g.suggested;
    var box = el("section", "fix" + (suggested ? " suggested" : ""));
    box.setAttribute("data-resolution", r.id);
    var head = el("h4", null, r.who === "agent" ? "The agent can fix it" : "A person must fix it");
    if (suggested) { head.appendChild(document.createTextNode(" ")); head.appendChild(el("span", "status s-suggested", "suggested")); }
    box.appendChild(head);
    var title = el("p");
    title.appendChild(el("strong", null, r.title));
    box.appendChild(title);
    var steps = el("ol");
    r.steps.forEach(function (s) { steps.appendChild(el("li", null, s)); });
    box.appendChild(steps);
    box.appendChild(el("p", "hint", "Worked " + r.successes + (r.successes === 1 ? " time" : " times") +
      " before, failed " + r.failures + "."));
    if (Object.prototype.hasOwnProperty.call(g.marked, r.id)) {
      box.appendChild(el("p", "marked", "Marked: " + (g.marked[r.id] ? "it worked" : "it did not work") + "."));
    } else if (canMark) {
      var form = el("form", "inline mark");
      form.method = "post";
      form.action = "/guidance/outcomes";
      form.appendChild(hidden("csrf_token", window.atom.csrfToken()));
      form.appendChild(hidden("subject_type", g.subject_type));
      form.appendChild(hidden("subject_id", g.subject_id));
      form.appendChild(hidden("resolution_id", r.id));
      form.appendChild(hidden("back", back));
      [["yes", "It worked"], ["no", "It did not work"]].forEach(function (choice) {
        var button = el("button", "small", choice[1]);
        button.type = "submit";
        button.name = "worked";
        button.value = choice[0];
        form.appendChild(button);
        form.appendChild(document.createTextNode(" "));
      });
      box.appendChild(form);
    }
    return box;
  }

  function card(g, title, canMark, back) {
    var box = el("article", "guidance card");
    box.setAttribute("data-category", g.category);
    box.setAttribute("data-subject", g.subject_id);
    box.appendChild(el("h3", null, g.label + ": " + title));
    box.appendChild(el("p", null, g.meaning));
    box.appendChild(el("p", "field-error", g.error + (g.error_code ? " (" + g.error_code + ")" : "")));
    var fixes = el("div", "fixes");
    fixes.appendChild(resolution(g, g.agent_fix, canMark, back));
    fixes.appendChild(resolution(g, g.person_fix, canMark, back));
    box.appendChild(fixes);
    return box;
  }

  function drawSteps(list, steps) {
    var fresh = el("ol", "timeline");
    fresh.id = list.id;
    fresh.setAttribute("data-p-steps", "");
    steps.forEach(function (s) {
      var item = el("li");
      item.setAttribute("data-key", s.key);
      item.setAttribute("data-status", s.status);
      item.appendChild(el("strong", null, s.label));
      item.appendChild(document.createTextNode(" · "));
      item.appendChild(el("span", "status s-" + s.status, s.status.replace(/_/g, " ")));
      if (s.detail) { item.appendChild(document.createTextNode(" ")); item.appendChild(el("code", null, s.detail)); }
      if (s.error) { item.appendChild(el("p", "field-error", s.error)); }
      fresh.appendChild(item);
    });
    list.replaceWith(fresh);
  }

  function drawProgress(panel, p) {
    if (!p.recorded) { return; }
    var canMark = panel.getAttribute("data-can-mark") === "yes";
    var back = panel.getAttribute("data-back") || window.location.pathname;
    part(panel, "bar").value = p.percent;
    part(panel, "count").textContent = "Step " + p.step + " of " + (p.bounded ? "at most " : "") + p.total +
      " · " + p.percent + "%";
    var status = part(panel, "status");
    status.textContent = p.status;
    status.className = "status s-" + p.status;
    part(panel, "what").textContent = p.what;
    part(panel, "why").textContent = p.why || "—";
    part(panel, "next").textContent = p.next || "—";
    panel.setAttribute("data-status", p.status);
    var guidance = part(panel, "guidance");
    var fresh = el("div");
    fresh.setAttribute("data-p", "guidance");
    var shown = {};
    p.steps.forEach(function (s) {
      if (s.guidance) { shown[s.guidance.subject_id] = true; fresh.appendChild(card(s.guidance, s.label, canMark, back)); }
    });
    if (p.guidance && !shown[p.guidance.subject_id]) { fresh.appendChild(card(p.guidance, "the run", canMark, back)); }
    guidance.replaceWith(fresh);
    var steps = document.querySelector("[data-p-steps]");
    if (steps) { drawSteps(steps, p.steps); }
  }

  function watchPanel(panel) {
    var url = panel.getAttribute("data-progress-live");
    if (!url || typeof EventSource === "undefined") { return null; }
    var said = part(panel, "live-status");
    return follow(url, function (p) { drawProgress(panel, p); }, function (state) {
      panel.setAttribute("data-live-state", state);
      if (state === "reconnecting") { said.textContent = "Reconnecting…"; }
    });
  }

  // --- agent requests ------------------------------------------------------------------------

  function requestItem(r, canDecide, canPermit) {
    var item = el("li", "request card");
    item.setAttribute("data-request", r.id);
    item.setAttribute("data-kind", r.kind);
    item.appendChild(el("h3", null, r.question));
    item.appendChild(el("p", "meta", r.agent_name + " asks · " + r.kind + " · without an answer by " + r.expires_at +
      " (UTC) the default “" + r.default_option + "” applies"));
    if (r.context) { item.appendChild(el("p", null, r.context)); }
    var may = r.kind === "permission" ? canPermit : canDecide;
    if (!may) {
      item.appendChild(el("p", "hint", r.kind === "permission" ? "An approver answers a permission." : "An operator answers."));
      return item;
    }
    var form = el("form", "answer");
    form.method = "post";
    form.action = "/requests/" + encodeURIComponent(r.id) + "/answer";
    form.appendChild(hidden("csrf_token", window.atom.csrfToken()));
    var field = el("div", "field");
    var label = el("label", null, "Note for the agent (optional)");
    label.htmlFor = "note-" + r.id;
    var note = el("input");
    note.id = "note-" + r.id;
    note.name = "note";
    note.maxLength = 2000;
    field.appendChild(label);
    field.appendChild(note);
    form.appendChild(field);
    var actions = el("div", "actions");
    r.options.forEach(function (option) {
      var button = el("button", option === r.default_option ? "secondary" : null, option);
      button.type = "submit";
      button.name = "answer";
      button.value = option;
      actions.appendChild(button);
    });
    form.appendChild(actions);
    item.appendChild(form);
    return item;
  }

  function watchInbox(root) {
    if (typeof EventSource === "undefined") { return; }
    var canDecide = root.getAttribute("data-can-decide") === "yes";
    var canPermit = root.getAttribute("data-can-permit") === "yes";
    var list = root.querySelector('[data-r="list"]');
    var said = root.querySelector('[data-r="live-status"]');
    follow(root.getAttribute("data-requests-live"), function (state) {
      var before = list.getAttribute("data-ids") || "";
      var ids = state.items.map(function (r) { return r.id; }).join(" ");
      root.querySelector('[data-r="count"]').textContent = String(state.pending);
      root.querySelector('[data-r="empty"]').hidden = state.items.length > 0;
      if (ids === before) { return; }
      // Keep what someone is typing into a note of a request that is still there.
      var typed = {};
      list.querySelectorAll("input[name=note]").forEach(function (input) { typed[input.id] = input.value; });
      var fresh = el("ul", "requests");
      fresh.setAttribute("data-r", "list");
      fresh.setAttribute("data-ids", ids);
      state.items.forEach(function (r) { fresh.appendChild(requestItem(r, canDecide, canPermit)); });
      fresh.querySelectorAll("input[name=note]").forEach(function (input) {
        if (typed[input.id]) { input.value = typed[input.id]; }
      });
      list.replaceWith(fresh);
      list = fresh;
      said.textContent = state.pending + (state.pending === 1 ? " request waits" : " requests wait") + " for an answer.";
    }, function (state) { root.setAttribute("data-live-state", state); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("progress");
    var source = panel ? watchPanel(panel) : null;
    if (panel) {
      // The chat page: the panel follows the answer being written.
      document.addEventListener("atom:run-started", function (event) {
        if (source) { source.close(); }
        panel.setAttribute("data-progress-live", "/live/guidance/agent-runs/" + encodeURIComponent(event.detail.executionId));
        panel.setAttribute("data-back", "/agent-runs/" + encodeURIComponent(event.detail.executionId));
        panel.hidden = false;
        source = watchPanel(panel);
      });
    }
    var inbox = document.querySelector("[data-requests-live]");
    if (inbox) { watchInbox(inbox); }
  });
})();
