/* Autosave for "I'd like to talk about this": the tick saves at once, the note when it is left
 * (or a second after typing stops). Each question's flag has its own sequence number, like an
 * answer's, so a late save never undoes a newer one. Without this script the section form posts
 * the same fields with "Save and continue".
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-talk-url]");
  if (!form || !window.fetch) { return; }
  var url = form.getAttribute("data-talk-url");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
  var timers = {};

  function state(box, text, kind) {
    var note = box.querySelector("[data-talk-state]");
    if (note) { note.textContent = text; }
    box.setAttribute("data-save-state", kind);
  }

  function save(box) {
    var code = box.getAttribute("data-talk");
    var hidden = box.querySelector("input[data-talk-seq]");
    var seq = (parseInt(hidden.getAttribute("data-talk-seq"), 10) || 0) + 1;
    hidden.setAttribute("data-talk-seq", String(seq));
    hidden.value = String(seq + 1);
    var body = new URLSearchParams();
    body.set("item", code);
    if (box.querySelector("input[type=checkbox]").checked) { body.set("talk", "on"); }
    body.set("note", box.querySelector("textarea").value);
    body.set("seq", String(seq));
    state(box, "Saving…", "saving");
    fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf ? csrf.value : "", "X-Requested-With": "fetch" }
    }).then(function (reply) {
      if (reply.status === 204) { state(box, "Saved", "saved"); return; }
      return reply.text().then(function (text) {
        var plain = (reply.headers.get("Content-Type") || "").indexOf("text/plain") === 0;
        state(box, plain && text ? text : "Not saved. Please use \u201cSave and continue\u201d.", "refused");
      });
    }).catch(function () {
      state(box, "Not saved yet: \u201cSave and continue\u201d saves it too.", "retrying");
    });
  }

  form.addEventListener("change", function (event) {
    var box = event.target.closest && event.target.closest("[data-talk]");
    if (!box) { return; }
    window.clearTimeout(timers[box.getAttribute("data-talk")]);
    save(box);
  });
  form.addEventListener("input", function (event) {
    var box = event.target.closest && event.target.closest("[data-talk]");
    if (!box || event.target.tagName !== "TEXTAREA") { return; }
    var code = box.getAttribute("data-talk");
    window.clearTimeout(timers[code]);
    timers[code] = window.setTimeout(function () { save(box); }, 1000);
  });
})();
