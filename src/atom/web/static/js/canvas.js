// Canvases: draw each canvas from its live view (server-sent events, the whole state each time);
// the kinds are drawn by canvas_draw.js, forms and custom components here.
// Everything the agent wrote goes in through textContent or setAttribute on elements we create:
// no HTML strings, no eval, no inline style (the strict CSP). Charts arrive as geometry computed on
// the server; a custom component runs only in <iframe sandbox="allow-scripts"> (no same origin).
(function () {
  "use strict";

  var draw = window.atomCanvasDraw;
  var el = draw.el;

  function input(field, id) {
    var node;
    if (field.enum) {
      node = el("select");
      if (!field.required) { node.appendChild(el("option", null, "")); }
      field.enum.forEach(function (choice) { var o = el("option", null, choice); o.value = String(choice); node.appendChild(o); });
    } else if (field.type === "boolean") {
      node = el("input");
      node.type = "checkbox";
    } else {
      node = el("input");
      node.type = field.type === "number" || field.type === "integer" ? "number" :
        ({ email: "email", date: "date", uri: "url" })[field.format] || "text";
      if (field.type === "integer") { node.step = "1"; }
      if (field.type === "number") { node.step = "any"; }
      if (field.minimum !== null && field.minimum !== undefined) { node.min = String(field.minimum); }
      if (field.maximum !== null && field.maximum !== undefined) { node.max = String(field.maximum); }
      if (field.max_length) { node.maxLength = field.max_length; }
    }
    if (field.default !== null && field.default !== undefined) {
      if (node.type === "checkbox") { node.checked = Boolean(field.default); } else { node.value = String(field.default); }
    }
    node.id = id;
    node.name = field.name;
    if (field.required) { node.setAttribute("aria-required", "true"); }
    return node;
  }

  function valueOf(field, node) {
    if (field.type === "boolean") { return node.checked; }
    var raw = node.value;
    if (raw === "") { return undefined; }
    if (field.type === "integer" || field.type === "number") {
      var n = Number(raw);
      return Number.isFinite(n) ? n : raw;
    }
    return raw;
  }

  function form(canvas, canSubmit) {
    var view = canvas.view;
    var box = el("div", "canvas-form");
    if (canvas.content.description) { box.appendChild(el("p", null, canvas.content.description)); }
    if (canvas.status !== "open") {
      var done = el("div", "submitted");
      done.appendChild(el("p", "flash", canvas.status === "submitted" ? "Submitted by " + canvas.submitted_by + "." : "This form is closed."));
      if (canvas.submission) {
        var list = el("dl");
        Object.keys(canvas.submission).forEach(function (key) {
          list.appendChild(el("dt", null, key));
          list.appendChild(el("dd", null, String(canvas.submission[key])));
        });
        done.appendChild(list);
      }
      box.appendChild(done);
      return box;
    }
    var f = el("form", "stack");
    f.noValidate = true;  // the server validates: its errors are shown beside each field
    var nodes = {};
    view.fields.forEach(function (field) {
      var id = "cf-" + canvas.id + "-" + field.name;
      var wrap = el("div", "field");
      wrap.setAttribute("data-field", field.name);
      var label = el("label", null, field.label + (field.required ? " (required)" : ""));
      label.htmlFor = id;
      var node = input(field, id);
      nodes[field.name] = node;
      if (field.type === "boolean") { wrap.classList.add("check"); wrap.appendChild(node); wrap.appendChild(label); }
      else { wrap.appendChild(label); wrap.appendChild(node); }
      if (field.description) { var hint = el("p", "hint", field.description); hint.id = id + "-hint"; wrap.appendChild(hint); node.setAttribute("aria-describedby", hint.id); }
      f.appendChild(wrap);
    });
    var note = el("p", "form-note");
    note.setAttribute("role", "alert");
    var send = el("button", "primary", canvas.content.submit_label || "Submit");
    send.type = "submit";
    send.disabled = !canSubmit;
    f.appendChild(send);
    f.appendChild(note);
    f.addEventListener("submit", async function (event) {
      event.preventDefault();
      f.querySelectorAll(".field-error").forEach(function (n) { n.remove(); });
      f.querySelectorAll(".field.invalid").forEach(function (n) { n.classList.remove("invalid"); });
      note.textContent = "Sending…";
      var values = {};
      view.fields.forEach(function (field) {
        var v = valueOf(field, nodes[field.name]);
        if (v !== undefined) { values[field.name] = v; }
      });
      send.disabled = true;
      var response = await window.atom.api("/api/canvases/" + encodeURIComponent(canvas.id) + "/submit", { method: "POST", json: { values: values } });
      send.disabled = false;
      if (response.ok) { note.textContent = "Submitted."; f.setAttribute("data-state", "submitted"); return; }
      var body = await response.json().catch(function () { return {}; });
      var error = body.error || {};
      var fields = (error.details && error.details.fields) || [];
      var placed = 0;
      fields.forEach(function (item) {
        var name = String(item.field || "").replace(/^(body\.)?values\.?/, "");
        var wrap = f.querySelector('[data-field="' + (window.CSS && CSS.escape ? CSS.escape(name) : name) + '"]');
        if (wrap) {
          var message = el("p", "field-error", item.message);
          message.id = "err-" + canvas.id + "-" + name;
          wrap.classList.add("invalid");
          wrap.appendChild(message);
          nodes[name].setAttribute("aria-invalid", "true");
          nodes[name].setAttribute("aria-describedby", message.id);
          placed += 1;
        }
      });
      note.textContent = placed ? "Please correct the marked fields." : (error.message || "HTTP " + response.status);
      f.setAttribute("data-state", "invalid");
    });
    box.appendChild(f);
    return box;
  }

  function component(canvas) {
    var frame = el("iframe", "component-frame");
    frame.setAttribute("sandbox", "allow-scripts");
    frame.setAttribute("referrerpolicy", "no-referrer");
    frame.title = canvas.title || ("Custom component " + canvas.content.component);
    frame.src = "/canvases/" + encodeURIComponent(canvas.id) + "/frame?v=" + canvas.version;
    return frame;
  }

  function body(canvas, canSubmit) {
    var content = canvas.content || {};
    switch (canvas.kind) {
      case "markdown": { var m = el("div", "markdown"); draw.markdown(m, content.text || ""); return m; }
      case "chart": return draw.chart(canvas.view, canvas.title);
      case "sheet": return draw.sheet(canvas.view, content);
      case "form": return form(canvas, canSubmit);
      case "status": return draw.statusPanel(content);
      case "email": return draw.email(content);
      case "terminal": return draw.terminal(content);
      case "code": return draw.code(canvas.view, content);
      case "component": return component(canvas);
      default: return el("p", null, "Unknown canvas kind " + canvas.kind);
    }
  }

  function meta(canvas) {
    var line = el("p", "meta canvas-meta");
    var bits = [canvas.kind, "version " + canvas.version, canvas.status, canvas.mode + " mode"];
    if (canvas.owner) { bits.push("by " + canvas.owner); }
    if (canvas.lock_holder) { bits.push("locked by " + canvas.lock_holder); }
    if (canvas.mode === "sequential" && canvas.turn) { bits.push(canvas.turn + "'s turn"); }
    line.textContent = bits.join(" · ");
    return line;
  }

  function history(canvas) {
    var details = el("details", "canvas-history");
    details.appendChild(el("summary", null, "Edits and participants"));
    if (canvas.participants.length) {
      details.appendChild(el("p", "hint", "Participants: " + canvas.participants.map(function (p) { return p.agent + " (" + p.role + ")"; }).join(", ")));
    }
    var list = el("ol", "edits");
    canvas.history.forEach(function (h) {
      list.appendChild(el("li", "edit o-" + h.outcome, h.action + " by " + h.by + " (v" + h.version + (h.outcome !== "ok" ? ", " + h.outcome : "") + ")"));
    });
    details.appendChild(list);
    if (canvas.reviews.length) {
      var reviews = el("ul", "reviews");
      canvas.reviews.forEach(function (r) { reviews.appendChild(el("li", null, r.by + ": " + r.verdict + (r.note ? " — " + r.note : ""))); });
      details.appendChild(reviews);
    }
    return details;
  }

  function signature(canvas) {
    return [canvas.version, canvas.status, canvas.lock_holder, canvas.turn, canvas.history.length && canvas.history[0].at, canvas.reviews.length].join("|");
  }

  function render(canvas, canSubmit) {
    var section = el("article", "card canvas canvas-" + canvas.kind);
    section.setAttribute("data-canvas", canvas.id);
    section.setAttribute("data-version", String(canvas.version));
    section.setAttribute("data-status", canvas.status);
    var heading = el("h3", null);
    var link = el("a", null, canvas.title || ("Untitled " + canvas.kind));
    link.href = "/canvases/" + encodeURIComponent(canvas.id);
    heading.appendChild(link);
    section.appendChild(heading);
    section.appendChild(meta(canvas));
    section.appendChild(body(canvas, canSubmit));
    section.appendChild(history(canvas));
    return section;
  }

  function start(root) {
    var url = root.getAttribute("data-canvas-live");
    var canSubmit = root.getAttribute("data-can-submit") === "yes";
    var shown = {};
    var status = document.getElementById("canvas-status");
    var source = new EventSource(url);
    source.addEventListener("update", function (event) {
      var data = JSON.parse(event.data);
      var wanted = {};
      var previous = null;
      if (!data.canvases.length) {
        root.textContent = "";
        if (root.getAttribute("data-empty")) { root.appendChild(el("p", "hint", root.getAttribute("data-empty"))); }
      } else {
        var hint = root.querySelector(":scope > p.hint");
        if (hint) { hint.remove(); }
      }
      data.canvases.forEach(function (canvas) {
        wanted[canvas.id] = true;
        var sig = signature(canvas);
        var node = shown[canvas.id];
        if (!node || node.sig !== sig) {
          var fresh = render(canvas, canSubmit);
          if (node) { node.el.replaceWith(fresh); }
          else if (previous) { previous.after(fresh); }
          else { root.prepend(fresh); }
          shown[canvas.id] = { el: fresh, sig: sig };
        }
        previous = shown[canvas.id].el;
      });
      Object.keys(shown).forEach(function (id) { if (!wanted[id]) { shown[id].el.remove(); delete shown[id]; } });
      root.setAttribute("data-live-state", "live");
      if (status) { status.textContent = "The canvas is live."; }
    });
    source.addEventListener("signed_out", function () {
      source.close();
      window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    });
    source.onerror = function () { root.setAttribute("data-live-state", "reconnecting"); };
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-canvas-live]").forEach(start);
  });
})();
