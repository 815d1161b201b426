/* Quick exit and "Finish for now" on every partner page.
 *
 * Without this script each is a plain form POST: the server ends the partner's session and sends
 * the browser on (quick exit: to a neutral site of the practice's choice). With it, the session is
 * ended by a beacon, which the browser delivers even while the page is closing, and the page is
 * *replaced* by the neutral site, so Back does not come back here. Pages behind it are never
 * cached (no-store), so Back to an earlier page asks the server again, which no longer knows the
 * session and shows nothing of the response.
 */
(function () {
  "use strict";

  function leave(form, event) {
    var target = form.getAttribute("data-exit-to");
    if (!target || !navigator.sendBeacon) { return; }  // the plain POST does it all
    event.preventDefault();
    try {
      navigator.sendBeacon(form.action, new FormData(form));
    } catch (e) {
      form.submit();
      return;
    }
    window.location.replace(target);
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
