// Canvas drawing (used by canvas.js): each kind's content as elements built with DOM APIs, text only
// through textContent or setAttribute, SVG charts from the server's geometry. No HTML strings, no eval,
// no inline style (the strict CSP).
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

  window.atomCanvasDraw = {
    el: el, markdown: markdown, chart: chart, sheet: sheet, statusPanel: statusPanel, email: email,
    terminal: terminal, code: code,
  };
})();
