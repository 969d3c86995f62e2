// A workflow's definition page: validate the YAML as it is typed (POST /api/workflows/validate, the
// same checks as saving) and list each problem at its line. Messages go in with textContent only.
(function () {
  "use strict";

  var DELAY_MS = 400;

  function show(box, problems, valid) {
    while (box.firstChild) { box.removeChild(box.firstChild); }
    if (valid) {
      var ok = document.createElement("p");
      ok.className = "valid";
      ok.textContent = "Valid.";
      box.appendChild(ok);
      return;
    }
    var list = document.createElement("ul");
    list.className = "problems";
    problems.forEach(function (p) {
      var item = document.createElement("li");
      item.setAttribute("data-line", p.line || "");
      item.textContent = (p.line ? "Line " + p.line + ": " : "") + (p.field ? p.field + ": " : "") + p.message;
      list.appendChild(item);
    });
    box.appendChild(list);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var editor = document.getElementById("f-source");
    var box = document.getElementById("problems-status");
    if (!editor || !box) { return; }
    var url = box.getAttribute("data-validate");
    var timer = null;
    var asked = 0;
    function validate() {
      var mine = ++asked;
      var source = editor.value;
      if (!source.trim()) { show(box, [{ line: null, field: "", message: "The definition is empty." }], false); return; }
      window.atom.api(url, { method: "POST", json: { source: source } })
        .then(function (response) { return response.json().then(function (body) { return [response.ok, body]; }); })
        .then(function (result) {
          if (mine !== asked) { return; }  // a newer edit is being checked
          var body = result[1];
          if (!result[0]) {
            show(box, [{ line: null, field: "", message: (body.error && body.error.message) || "Could not validate." }], false);
            return;
          }
          show(box, body.problems || [], body.valid);
          editor.setAttribute("aria-invalid", body.valid ? "false" : "true");
          editor.parentNode.classList.toggle("invalid", !body.valid);
        })
        .catch(function () { /* offline: the save still validates on the server */ });
    }
    editor.addEventListener("input", function () {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(validate, DELAY_MS);
    });
  });
})();
