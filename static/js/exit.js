/* Quick exit and "Finish for now" on every partner page.
 *
 * Without this script each is a plain form POST: the server ends the partner's session and sends
 * the browser on (quick exit: to a neutral site of the practice's choice). With it, a quick exit
 * hides the page at once, ends the session with a keepalive POST, and *replaces* the page by the
 * neutral site as soon as the server has answered (at most a second later), so Back does not come
 * back here. Leaving only after the answer closes a race that a fire-and-forget beacon left open:
 * on a busy server, Back could reach it before the beacon had ended the session. Pages behind it
 * are never cached (no-store), so Back to an earlier page asks the server again, which no longer
 * knows the session and shows nothing of the response.
 */
(function () {
  "use strict";

  var WAIT_MS = 1000;  // the longest the (already hidden) page waits for the session to end

  function leave(form, event) {
    var target = form.getAttribute("data-exit-to");
    if (!target || !window.fetch) { return; }  // the plain POST does it all
    event.preventDefault();
    document.documentElement.style.visibility = "hidden";  // nothing stays on screen meanwhile
    var gone = false;
    function go() {
      if (!gone) { gone = true; window.location.replace(target); }
    }
    try {
      // redirect "manual": the server's answer is enough; the neutral site is opened by go().
      fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin", keepalive: true, redirect: "manual"
      }).then(go, go);
    } catch (e) {
      form.submit();
      return;
    }
    window.setTimeout(go, WAIT_MS);
  }

  var forms = document.querySelectorAll("form[data-exit]");
  for (var i = 0; i < forms.length; i += 1) {
    forms[i].addEventListener("submit", leave.bind(null, forms[i]));
  }

  // Escape pressed three times in a row is a quick exit too (for a keyboard, without looking).
  var quick = document.querySelector("form[data-exit=quick]");
  var presses = 0;
  var last = 0;
  if (quick) {
    document.addEventListener("keydown", function (event) {
      if (event.key !== "Escape") { return; }
      var now = Date.now();
      presses = now - last < 800 ? presses + 1 : 1;
      last = now;
      if (presses >= 3) { quick.requestSubmit ? quick.requestSubmit() : quick.submit(); }
    });
  }
}());
