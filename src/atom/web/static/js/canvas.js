// Canvases: draw each canvas from its live view (server-sent events, the whole state each time).
// Everything the agent wrote goes in through textContent or setAttribute on elements we create:
// no HTML strings, no eval, no inline style (the strict CSP). Charts arrive as geometry computed on
// the server; a custom component runs only in <iframe sandbox="allow-scripts"> (no same origin).
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function svg(tag, attrs, cls) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (cls) { node.setAttribute("class", cls); }
    return node;
  }

  // Markdown as elements: fenced code, lists, headings, paragraphs, `code`, **bold**, *em*.
  function inline(parent, text) {
    var pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) { parent.appendChild(document.createTextNode(text.slice(last, match.index))); }
      var token = match[0];
      if (token.charAt(0) === "`") { parent.appendChild(el("code", null, token.slice(1, -1))); }
      else if (token.slice(0, 2) === "**") { parent.appendChild(el("strong", null, token.slice(2, -2))); }
      else { parent.appendChild(el("em", null, token.slice(1, -1))); }
      last = match.index + token.length;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  function markdown(target, source) {
    var lines = String(source).split("\n");
    var para = [];
    var i = 0;
    function flush() {
      if (para.length) { var p = el("p"); inline(p, para.join("\n")); target.appendChild(p); para = []; }
    }
    while (i < lines.length) {
      var line = lines[i];
      if (/^```/.test(line)) {
        flush();
        var code = [];
        i += 1;
        while (i < lines.length && !/^```/.test(lines[i])) { code.push(lines[i]); i += 1; }
        var pre = el("pre");
        pre.appendChild(el("code", null, code.join("\n")));
        target.appendChild(pre);
        i += 1;
        continue;
      }
      var bullet = /^\s*([-*]|\d+\.)\s+(.*)$/.exec(line);
      if (bullet) {
        flush();
        var list = el(/\d/.test(bullet[1]) ? "ol" : "ul");
        while (i < lines.length && (bullet = /^\s*([-*]|\d+\.)\s+(.*)$/.exec(lines[i]))) {
          var item = el("li");
          inline(item, bullet[2]);
          list.appendChild(item);
          i += 1;
        }
        target.appendChild(list);
        continue;
      }
      var heading = /^(#{1,6})\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        var h = el("h" + Math.min(6, heading[1].length + 2), "md-heading");
        inline(h, heading[2]);
        target.appendChild(h);
      } else if (line.trim() === "") { flush(); } else { para.push(line); }
      i += 1;
    }
    flush();
  }

  function chart(view, title) {
    var g = view.chart;
    var figure = el("figure", "canvas-chart");
    var box = svg("svg", { viewBox: "0 0 " + g.width + " " + g.height, role: "img" }, "chart-svg");
    box.setAttribute("aria-label", (title || "Chart") + " (" + g.chart_type + " chart)");
    if (g.plot) {
      (g.y_ticks || []).forEach(function (t) {
        box.appendChild(svg("line", { x1: g.plot[0], x2: g.plot[2], y1: t.y, y2: t.y }, "grid"));
        var label = svg("text", { x: g.plot[0] - 6, y: t.y + 4 }, "tick y");
        label.textContent = t.label;
        box.appendChild(label);
      });
      (g.x_ticks || []).forEach(function (t) {
        var label = svg("text", { x: t.x, y: g.height - 18 }, "tick x");
        label.textContent = t.label;
        box.appendChild(label);
      });
    }
    (g.lines || []).forEach(function (points, i) {
      box.appendChild(svg("polyline", { points: points }, "series s" + i));
    });
    (g.bars || []).forEach(function (row, i) {
      var group = svg("g", {}, "bars s" + i);
      row.forEach(function (b) { group.appendChild(svg("rect", { x: b[0], y: b[1], width: b[2], height: b[3] })); });
      box.appendChild(group);
    });
    (g.points || []).forEach(function (flat, i) {
      var group = svg("g", {}, "dots s" + i);
      for (var k = 0; k + 1 < flat.length; k += 2) { group.appendChild(svg("circle", { cx: flat[k], cy: flat[k + 1], r: 2.5 })); }
      box.appendChild(group);
    });
    (g.slices || []).forEach(function (s) {
      var shape = s.circle ? svg("circle", { cx: s.circle[0], cy: s.circle[1], r: s.circle[2] }) : svg("path", { d: s.path });
      shape.setAttribute("class", "slice s" + (s.index % 10));
      var tip = svg("title");
      tip.textContent = s.label + ": " + Math.round(s.share * 1000) / 10 + "%";
      shape.appendChild(tip);
      box.appendChild(shape);
    });
    if (g.x_label) { var xl = svg("text", { x: g.width / 2, y: g.height - 2 }, "axis-label"); xl.textContent = g.x_label; box.appendChild(xl); }
    figure.appendChild(box);
    var legend = el("ul", "legend");
    (g.legend || []).forEach(function (name, i) {
      var item = el("li");
      item.appendChild(el("span", "swatch s" + (i % 10)));
      item.appendChild(document.createTextNode(name));
      legend.appendChild(item);
    });
    figure.appendChild(legend);
    if (g.y_label) { figure.appendChild(el("figcaption", "hint", g.y_label)); }
    return figure;
  }

  function sheet(view, content) {
    var table = el("table", "sheet");
    var head = el("thead");
    var row = el("tr");
    row.appendChild(el("th", null, ""));
    var width = 0;
    view.values.forEach(function (r) { width = Math.max(width, r.length); });
    for (var c = 0; c < width; c += 1) {
      var th = el("th", null, (view.columns && view.columns[c]) || String.fromCharCode(65 + c));
      th.setAttribute("scope", "col");
      row.appendChild(th);
    }
    head.appendChild(row);
    table.appendChild(head);
    var body = el("tbody");
    view.values.forEach(function (values, r) {
      var tr = el("tr");
      var th = el("th", null, String(r + 1));
      th.setAttribute("scope", "row");
      tr.appendChild(th);
      values.forEach(function (value, c) {
        var raw = content.rows[r] && content.rows[r][c];
        var td = el("td", /^#/.test(value) ? "sheet-error" : null, value);
        if (typeof raw === "string" && raw.charAt(0) === "=") { td.setAttribute("title", raw); td.classList.add("formula"); }
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
    return table;
  }

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

  function statusPanel(content) {
    var box = el("div", "status-panel");
    if (content.progress !== null && content.progress !== undefined) {
      var bar = el("progress");
      bar.max = 100;
      bar.value = content.progress;
      bar.setAttribute("aria-label", "Progress");
      box.appendChild(bar);
    }
    var list = el("ul", "status-items");
    (content.items || []).forEach(function (item) {
      var li = el("li", "state-" + item.state);
      li.appendChild(el("span", "state", item.state));
      li.appendChild(el("strong", null, item.label));
      if (item.value) { li.appendChild(document.createTextNode(" " + item.value)); }
      if (item.detail) { li.appendChild(el("p", "hint", item.detail)); }
      list.appendChild(li);
    });
    box.appendChild(list);
    return box;
  }

  function email(content) {
    var box = el("div", "email-draft");
    var head = el("dl");
    [["To", (content.to || []).join(", ")], ["Cc", (content.cc || []).join(", ")], ["Subject", content.subject]].forEach(function (pair) {
      head.appendChild(el("dt", null, pair[0]));
      head.appendChild(el("dd", null, pair[1] || "—"));
    });
    box.appendChild(head);
    box.appendChild(el("div", "email-body", content.body || ""));
    return box;
  }

  function terminal(content) {
    var pre = el("pre", "terminal");
    if (content.command) { pre.appendChild(el("span", "prompt", "$ " + content.command + "\n")); }
    pre.appendChild(document.createTextNode((content.lines || []).join("\n")));
    if (content.exit_code !== null && content.exit_code !== undefined) { pre.appendChild(el("span", "exit", "\n[exit " + content.exit_code + "]")); }
    return pre;
  }

  function code(view, content) {
    var figure = el("figure", "code");
    if (content.filename) { figure.appendChild(el("figcaption", "hint", content.filename + " (" + content.language + ")")); }
    var pre = el("pre", "code-block");
    var node = el("code");
    view.tokens.forEach(function (t) { node.appendChild(t[0] ? el("span", t[0], t[1]) : document.createTextNode(t[1])); });
    pre.appendChild(node);
    figure.appendChild(pre);
    return figure;
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
      case "markdown": { var m = el("div", "markdown"); markdown(m, content.text || ""); return m; }
      case "chart": return chart(canvas.view, canvas.title);
      case "sheet": return sheet(canvas.view, content);
      case "form": return form(canvas, canSubmit);
      case "status": return statusPanel(content);
      case "email": return email(content);
      case "terminal": return terminal(content);
      case "code": return code(canvas.view, content);
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
