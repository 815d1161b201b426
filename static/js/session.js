/* Warns a signed-in person shortly before an idle session ends, and offers to keep it.
   The server decides: the session ends after SESSION_IDLE_SECONDS without a request whatever
   this script does. Without JavaScript the page works the same, without the warning. */
(function () {
  "use strict";
  var box = document.getElementById("session-warning");
  if (!box) { return; }
  var idle = parseInt(box.getAttribute("data-idle-seconds"), 10) || 1800;
  var warnBefore = parseInt(box.getAttribute("data-warning-seconds"), 10) || 300;
  var keepAliveUrl = box.getAttribute("data-keep-alive-url");
  var text = document.getElementById("session-warning-text");
  var button = box.querySelector("[data-session-stay]");
  var warnTimer = null;
  var endTimer = null;
  var deadline = 0;
  var tick = null;

  function minutesLeft() {
    return Math.max(0, Math.ceil((deadline - Date.now()) / 60000));
  }

  function showWarning() {
    box.hidden = false;
    var update = function () {
      var m = minutesLeft();
      text.textContent = "For privacy you will be signed out in " + m + (m === 1 ? " minute" : " minutes") +
        " unless you continue.";
    };
    update();
    tick = window.setInterval(update, 15000);
    button.focus();
  }

  function ended() {
    // The server has ended the session: reloading shows the sign-in page.
    window.location.reload();
  }

  function restart() {
    window.clearTimeout(warnTimer);
    window.clearTimeout(endTimer);
    window.clearInterval(tick);
    box.hidden = true;
    deadline = Date.now() + idle * 1000;
    warnTimer = window.setTimeout(showWarning, Math.max(0, idle - warnBefore) * 1000);
    endTimer = window.setTimeout(ended, idle * 1000 + 2000);
  }

  button.addEventListener("click", function () {
    fetch(keepAliveUrl, { credentials: "same-origin", redirect: "manual", headers: { "X-Requested-With": "fetch" } })
      .then(function (response) {
        if (response.status === 204) { restart(); } else { ended(); }
      })
      .catch(function () {
        text.textContent = "We could not reach the site. Check your connection, then try again.";
      });
  });

  // Every htmx request renews the session on the server too.
  document.body.addEventListener("htmx:afterRequest", restart);
  restart();
}());
