/* In-office answering: after five minutes without a touch, a key or a click, end this device's
 * visit and show the neutral code page again (the server ends it too, on the next request). */
(function () {
  "use strict";
  var script = document.currentScript;
  var endUrl = script && script.getAttribute("data-end-url");
  if (!endUrl) { return; }
  var IDLE = 5 * 60 * 1000;
  var timer = null;

  function end() {
    var form = document.createElement("form");
    form.method = "post";
    form.action = endUrl;
    document.body.appendChild(form);
    form.submit();
  }

  function restart() {
    window.clearTimeout(timer);
    timer = window.setTimeout(end, IDLE);
  }

  ["keydown", "pointerdown", "input", "scroll"].forEach(function (kind) {
    window.addEventListener(kind, restart, { passive: true });
  });
  restart();
})();
