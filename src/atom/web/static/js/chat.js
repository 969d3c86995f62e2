// Chat: send a message, read the answer's server-sent events as they arrive (docs/chat.md).
// Untrusted text (the model's, the user's, tool output) only ever goes in through textContent:
// the markdown renderer below builds elements, it never parses HTML.
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // Inline markdown: `code`, **bold**, *em*; everything else is text.
  function inline(parent, text) {
    var pattern = /(`[^`]+`|\*\*[^*]+\*\*|\*[^*\s][^*]*\*)/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      if (match.index > last) { parent.appendChild(document.createTextNode(text.slice(last, match.index))); }
      var token = match[0];
      if (token.charAt(0) === "`") {
        parent.appendChild(el("code", null, token.slice(1, -1)));
      } else if (token.slice(0, 2) === "**") {
        parent.appendChild(el("strong", null, token.slice(2, -2)));
      } else {
        parent.appendChild(el("em", null, token.slice(1, -1)));
      }
      last = match.index + token.length;
    }
    if (last < text.length) { parent.appendChild(document.createTextNode(text.slice(last))); }
  }

  // Block markdown: fenced code, bullet and numbered lists, headings (shown bold), paragraphs.
  function renderMarkdown(target, source) {
    while (target.firstChild) { target.removeChild(target.firstChild); }
    var lines = String(source).split("\n");
    var i = 0;
    var para = [];
    function flush() {
      if (para.length) {
        var p = el("p");
        inline(p, para.join("\n"));
        target.appendChild(p);
        para = [];
      }
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
        var ordered = /\d/.test(bullet[1]);
        var list = el(ordered ? "ol" : "ul");
        while (i < lines.length && (bullet = /^\s*([-*]|\d+\.)\s+(.*)$/.exec(lines[i]))) {
          var item = el("li");
          inline(item, bullet[2]);
          list.appendChild(item);
          i += 1;
        }
        target.appendChild(list);
        continue;
      }
      var heading = /^#{1,6}\s+(.*)$/.exec(line);
      if (heading) {
        flush();
        var h = el("p", "md-heading");
        var strong = el("strong");
        inline(strong, heading[1]);
        h.appendChild(strong);
        target.appendChild(h);
      } else if (line.trim() === "") {
        flush();
      } else {
        para.push(line);
      }
      i += 1;
    }
    flush();
  }

  // Server-sent events out of a fetch() body: yields {event, data} objects through `onEvent`.
  async function readEvents(response, onEvent) {
    var reader = response.body.getReader();
    var decoder = new TextDecoder();
    var buffer = "";
    for (;;) {
      var chunk = await reader.read();
      if (chunk.done) { break; }
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n/g, "\n");
      var end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        var block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        var name = "message";
        var data = [];
        block.split("\n").forEach(function (row) {
          if (row.indexOf("event:") === 0) { name = row.slice(6).trim(); }
          if (row.indexOf("data:") === 0) { data.push(row.slice(5).replace(/^ /, "")); }
        });
        if (data.length) {
          try { onEvent(name, JSON.parse(data.join("\n"))); } catch (e) { /* not JSON: ignore */ }
        }
      }
    }
  }

  function outcome(status, event) {
    var box = el("span", "outcome o-" + status);
    if (status === "ok") {
      box.textContent = "allowed";
    } else if (status === "pending_approval") {
      box.appendChild(document.createTextNode("pending approval: "));
      var link = el("a", null, "see the proposal");
      link.href = "/proposals/" + encodeURIComponent(event.proposal_id || "");
      box.appendChild(link);
    } else if (status === "denied") {
      box.textContent = "denied: " + (event.error || event.reason_code || "refused by governance");
    } else {
      box.textContent = status.replace(/_/g, " ") + (event.error ? ": " + event.error : "");
    }
    return box;
  }

  function start(form) {
    var log = document.getElementById("chat-log");
    var status = document.getElementById("chat-status");
    var send = document.getElementById("chat-send");
    var cancel = document.getElementById("chat-cancel");
    var input = document.getElementById("f-message");
    var sessionId = log.getAttribute("data-chat-session");
    var agentName = log.getAttribute("data-agent-name") || "Agent";
    var running = null;

    log.querySelectorAll("[data-markdown]").forEach(function (node) { renderMarkdown(node, node.textContent); });

    function say(text) { status.textContent = text; }

    cancel.addEventListener("click", function () {
      if (!running) { return; }
      cancel.disabled = true;
      say("Cancelling…");
      var current = running;
      var stop = function () { current.controller.abort(); };
      if (current.executionId) {
        window.atom.api("/api/chat/executions/" + encodeURIComponent(current.executionId) + "/cancel", { method: "POST" })
          .then(stop, stop);
      } else {
        stop();
      }
    });

    form.addEventListener("submit", async function (submit) {
      submit.preventDefault();
      var content = input.value.trim();
      if (!content || running) { return; }
      var mine = el("li", "msg msg-user");
      mine.appendChild(el("span", "who", "You"));
      mine.appendChild(el("div", "text", content));
      log.appendChild(mine);
      var answer = el("li", "msg msg-assistant");
      answer.setAttribute("data-state", "streaming");
      answer.appendChild(el("span", "who", agentName));
      var tools = el("div", "tools");
      var text = el("div", "text");
      answer.appendChild(tools);
      answer.appendChild(text);
      log.appendChild(answer);
      input.value = "";
      send.disabled = true;
      cancel.disabled = false;
      say("The agent is answering…");
      running = { controller: new AbortController(), executionId: null };
      var written = "";
      var calls = {};
      var final = "streaming";
      function onEvent(name, event) {
        if (name === "start") {
          running.executionId = event.execution_id;
          answer.setAttribute("data-execution", event.execution_id);
          // The run's live progress panel (static/js/guidance.js) follows this run.
          document.dispatchEvent(new CustomEvent("atom:run-started", { detail: { executionId: event.execution_id } }));
        } else if (name === "token") {
          written += event.text;
          text.textContent = written;
        } else if (name === "message") {
          written = event.text;
          text.textContent = written;
        } else if (name === "tool_call") {
          var line = el("div", "tool");
          line.setAttribute("data-call", event.id);
          line.appendChild(el("span", "tool-name", event.name));
          line.appendChild(document.createTextNode(" "));
          line.appendChild(el("code", null, JSON.stringify(event.arguments)));
          line.appendChild(document.createTextNode(" "));
          var pending = el("span", "outcome", "running…");
          line.appendChild(pending);
          calls[event.id] = pending;
          tools.appendChild(line);
        } else if (name === "tool_result") {
          var shown = outcome(event.status, event);
          if (calls[event.id]) { calls[event.id].replaceWith(shown); calls[event.id] = shown; }
        } else if (name === "proposal") {
          var asked = el("div", "tool");
          asked.appendChild(el("span", "tool-name", event.name));
          asked.appendChild(document.createTextNode(" (by a delegated agent) "));
          asked.appendChild(outcome("pending_approval", event));
          tools.appendChild(asked);
        } else if (name === "routed" || name === "error") {
          answer.appendChild(el("p", "field-error", event.message || event.code));
        } else if (name === "done") {
          final = event.status;
          if (event.output && !written) { written = event.output; }
        }
      }
      try {
        var response = await window.atom.api("/api/chat/sessions/" + encodeURIComponent(sessionId) + "/messages", {
          method: "POST",
          json: { content: content, stream: true },
          headers: { "Accept": "text/event-stream" },
          signal: running.controller.signal,
        });
        if (!response.ok) {
          var body = await response.json().catch(function () { return {}; });
          final = "failed";
          answer.appendChild(el("p", "field-error", (body.error && body.error.message) || ("HTTP " + response.status)));
        } else {
          await readEvents(response, onEvent);
        }
      } catch (error) {
        if (final === "streaming") { final = "cancelled"; }
      }
      renderMarkdown(text, written);
      answer.setAttribute("data-state", final === "streaming" ? "failed" : final);
      say("Answer " + (final === "streaming" ? "interrupted" : final) + ".");
      running = null;
      send.disabled = false;
      cancel.disabled = true;
      input.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("chat-form");
    if (form && document.getElementById("chat-log")) { start(form); }
    else {
      document.querySelectorAll("[data-markdown]").forEach(function (node) { renderMarkdown(node, node.textContent); });
    }
  });
})();
