/* Filter forms that refresh a list in place and push the address (hx-push-url).
 *
 * When the back or forward button brings an earlier list back, htmx restores the page as it was
 * drawn, but a text box keeps what was typed last. Put every field back to the value in the
 * restored address, so the form always says what the list shows.
 */
(function () {
  "use strict";

  function sync() {
    var params = new URLSearchParams(window.location.search);
    document.querySelectorAll("form[hx-push-url]").forEach(function (form) {
      Array.prototype.forEach.call(form.elements, function (field) {
        if (!field.name || field.type === "submit" || field.type === "hidden") { return; }
        var value = params.get(field.name);
        if (field.tagName === "SELECT") {
          field.value = value === null ? field.options[0].value : value;
          if (field.selectedIndex < 0) { field.selectedIndex = 0; }
        } else {
          field.value = value === null ? "" : value;
        }
      });
    });
  }

  // On a phone the filters fold behind their "Filters" summary (unless one is on), so the first
  // couple is on the first screen; wider screens hide the summary and keep them open.
  function fold() {
    if (!window.matchMedia("(max-width: 47.99rem)").matches) { return; }
    document.querySelectorAll("details[data-fold-narrow=yes]").forEach(function (details) {
      details.open = false;
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fold);
  } else {
    fold();
  }
  document.addEventListener("htmx:historyRestore", sync);
  window.addEventListener("pageshow", sync);
})();
