/* Autosave for the partner's answer pages: every choice is saved the moment it is made.
 *
 * Each question carries a per-item sequence number (data-seq). A new choice gets the next number
 * and is POSTed to the form's data-save-url; the server stores it only if no newer number is
 * stored, so a late retry can never undo a newer choice. A save that did not arrive (no network)
 * or that the server could not do (5xx: restarting, its database away) keeps the choice and is
 * retried with backoff, and the page says so; only a refusal (4xx) asks the partner to act. The
 * line at the bottom says "All answers saved" only when no question is waiting or refused. A save
 * may answer with a small piece of page to show at once (the support resources after a concerning
 * safety answer). As each answer is saved, the progress bar and this part's count in the list of
 * parts move with it. Without this script the same form posts with "Save and continue", and the
 * page says so.
 */
(function () {
  "use strict";

  var form = document.querySelector("form[data-save-url]");
  if (!form || !window.fetch) { return; }

  var url = form.getAttribute("data-save-url");
  var status = form.querySelector("[data-autosave-status]");
  var csrf = form.querySelector("input[name=csrfmiddlewaretoken]");
  var storeKey = "seq:" + form.getAttribute("data-response") + ":";
  var pending = {};  // item code -> {value, seq, attempt, timer}
  var failing = 0;
  var refused = {};  // item code -> the server's words, until a new choice for that question
  var progress = document.querySelector("[data-progress]");
  var pageCount = document.querySelector("[data-page-count]");
  var questions = form.querySelectorAll("fieldset.question");
  var answeredAtLoad = {};  // item code -> true when it had a saved answer as the page loaded
  Array.prototype.forEach.call(questions, function (box) {
    if (box.querySelector("input[type=radio]:checked")) { answeredAtLoad[box.id.slice(5)] = true; }
  });
  var answeredElsewhere = progress
    ? (parseInt(progress.getAttribute("data-answered"), 10) || 0) - Object.keys(answeredAtLoad).length
    : 0;

  // How many of this page's questions have a saved answer now (loaded with one, or saved since).
  function savedOnPage() {
    var n = 0;
    Array.prototype.forEach.call(questions, function (box) {
      var code = box.id.slice(5);
      if (answeredAtLoad[code] || box.getAttribute("data-save-state") === "saved") { n += 1; }
    });
    return n;
  }

  function showProgress() {
    var onPage = savedOnPage();
    if (progress) {
      var total = parseInt(progress.getAttribute("data-total"), 10) || 0;
      var answered = Math.min(total, answeredElsewhere + onPage);
      var label = progress.querySelector("[data-progress-label]");
      var bar = progress.querySelector("progress");
      if (label) { label.textContent = answered + " of " + total + " questions answered"; }
      if (bar) { bar.value = answered; bar.textContent = (total ? Math.round(100 * answered / total) : 0) + "%"; }
    }
    if (pageCount) {
      var count = parseInt(pageCount.getAttribute("data-questions"), 10) || 0;
      pageCount.textContent = onPage >= count ? "done" : onPage + "/" + count;
    }
  }

  function remembered(code) {
    try { return parseInt(window.localStorage.getItem(storeKey + code) || "0", 10) || 0; } catch (e) { return 0; }
  }

  function remember(code, seq) {
    try { window.localStorage.setItem(storeKey + code, String(seq)); } catch (e) { /* private mode: fine */ }
  }

  function say(text, state) {
    if (!status) { return; }
    status.textContent = text;
    status.setAttribute("data-state", state);
  }

  function mark(code, state, text) {
    var box = document.getElementById("item-" + code);
    if (!box) { return; }
    box.setAttribute("data-save-state", state);
    var note = box.querySelector("[data-item-state]");
    if (note) { note.textContent = text || ""; }
  }

  function summary() {
    var refusals = Object.keys(refused);
    if (failing > 0) {
      say("Not saved yet — retrying. We keep trying, and nothing you chose is lost.", "retrying");
    } else if (Object.keys(pending).length > 0) {
      say("Saving…", "saving");
    } else if (refusals.length > 0) {
      say(refused[refusals[refusals.length - 1]], "refused");
    } else {
      say("All answers saved.", "saved");
    }
  }

  function retry(code, job) {
    if (!job.failed) { job.failed = true; failing += 1; }
    mark(code, "retrying", "Not saved yet — retrying");
    summary();
    job.attempt += 1;
    var delay = Math.min(30000, 1000 * Math.pow(2, job.attempt - 1));
    job.timer = window.setTimeout(function () { send(code); }, delay);
  }

  function send(code) {
    var job = pending[code];
    if (!job) { return; }
    var body = new URLSearchParams();
    body.set("item", code);
    body.set("value", job.value);
    body.set("seq", String(job.seq));
    fetch(url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf ? csrf.value : "", "X-Requested-With": "fetch" }
    }).then(function (reply) {
      if (pending[code] !== job) { return; }  // a newer choice replaced this one
      if (reply.status >= 500) {
        // The server could not do it now (restarting, its database away): nothing was refused.
        retry(code, job);
        return;
      }
      if (job.failed) { job.failed = false; failing -= 1; }
      if (reply.status === 204) {
        delete pending[code];
        mark(code, "saved", "Saved");
        summary();
        showProgress();
        return;
      }
      if (reply.status === 200) {
        // Saved, and the server sends something to show at once (support resources).
        delete pending[code];
        mark(code, "saved", "Saved");
        summary();
        showProgress();
        return reply.text().then(function (html) {
          var slot = document.querySelector("[data-support-slot]");
          var box = document.getElementById("item-" + code);
          if (!slot || !html) { return; }
          // Right under the question just answered, where the respondent is looking.
          if (box) { box.insertAdjacentElement("afterend", slot); }
          slot.innerHTML = html;
        });
      }
      return reply.text().then(function (text) {
        if (pending[code] !== job) { return; }
        var plain = (reply.headers.get("Content-Type") || "").indexOf("text/plain") === 0;
        if (!plain || !text) {
          // Not one of our messages (an expired form token, a proxy's error page).
          text = "Not saved. Please reload the page and choose again; your earlier answers are kept.";
        }
        delete pending[code];
        mark(code, "refused", text);
        if (reply.status === 409 && text.indexOf("newer answer") !== -1) {
          text = "This answer was changed in another window. Reload the page to see the latest answers.";
        }
        refused[code] = text;
        summary();
      });
    }).catch(function () {
      if (pending[code] !== job) { return; }
      retry(code, job);
    });
  }

  // With this script running, every choice is saved as it is made.
  say("Each answer is saved as you choose it.", "ready");

  form.addEventListener("change", function (event) {
    var input = event.target;
    if (!input || input.type !== "radio" || input.name.indexOf("item-") !== 0) { return; }
    var code = input.name.slice(5);
    var box = document.getElementById("item-" + code);
    var seq = Math.max(parseInt(box.getAttribute("data-seq"), 10) || 0, remembered(code)) + 1;
    box.setAttribute("data-seq", String(seq));
    remember(code, seq);
    var hidden = form.querySelector("input[name='seq-" + code + "']");
    if (hidden) { hidden.value = String(seq); }
    var old = pending[code];
    if (old) {
      window.clearTimeout(old.timer);
      if (old.failed) { failing -= 1; }
    }
    delete refused[code];
    pending[code] = { value: input.value, seq: seq, attempt: 0, failed: false, timer: null };
    mark(code, "saving", "Saving…");
    summary();
    send(code);
  });

  // Back online: retry everything waiting at once instead of after the backoff.
  window.addEventListener("online", function () {
    Object.keys(pending).forEach(function (code) {
      var job = pending[code];
      if (job.failed) {
        window.clearTimeout(job.timer);
        send(code);
      }
    });
  });

  // Leaving with unsaved answers: the "Save and continue" button posts them anyway, so only
  // warn when the page is being closed some other way.
  var submitting = false;
  form.addEventListener("submit", function () { submitting = true; });
  window.addEventListener("beforeunload", function (event) {
    if (!submitting && Object.keys(pending).length > 0) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
