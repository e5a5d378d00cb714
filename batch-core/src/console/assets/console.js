// Live refresh: a page whose <main> says data-live is fetched again every two
// seconds and its <main> replaced, until the page no longer says it (the execution
// ended). Without JavaScript the page refreshes itself through <noscript>.
(function () {
  "use strict";
  var period = 2000;
  function refresh() {
    var main = document.querySelector("main");
    if (!main || !main.hasAttribute("data-live")) { return; }
    fetch(window.location.href, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (text) {
        var next = new DOMParser().parseFromString(text, "text/html").querySelector("main");
        if (next) { main.replaceWith(next); }
      })
      .catch(function () { /* keep the page as it is; try again */ })
      .then(function () { window.setTimeout(refresh, period); });
  }
  window.setTimeout(refresh, period);
})();
