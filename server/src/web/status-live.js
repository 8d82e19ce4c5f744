// Keeps an open status page current without a reload: every 10 s it fetches the page again and
// swaps in the new content. The page works without it; this only saves the reader a refresh.
(function () {
  "use strict";
  var every = 10000;
  function refresh() {
    fetch(window.location.pathname, { headers: { accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        var next = new DOMParser().parseFromString(html, "text/html").querySelector("main");
        var now = document.querySelector("main");
        if (next && now && next.innerHTML !== now.innerHTML) now.innerHTML = next.innerHTML;
      })
      .catch(function () {})
      .then(function () { window.setTimeout(refresh, every); });
  }
  window.setTimeout(refresh, every);
})();
