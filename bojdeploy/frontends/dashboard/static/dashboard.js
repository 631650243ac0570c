// Live updates by polling: every [data-live] region of the page is fetched again and replaced
// when it changed. The server renders every page (no JavaScript needed to read it); this only
// keeps an open page current. Polling pauses while the tab is hidden; the page says how often
// (data-refresh, in ms; 0: never).
(function () {
  "use strict";
  var regions = document.querySelectorAll("[data-live]");
  var every = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (!regions.length || !every || !window.fetch || !window.DOMParser) return;

  function focusKey(element) {
    return element && element.getAttribute ? element.getAttribute("href") : null;
  }

  function replace(region, fresh) {
    if (region.innerHTML === fresh.innerHTML) return;
    var key = region.contains(document.activeElement) ? focusKey(document.activeElement) : null;
    region.innerHTML = fresh.innerHTML;
    if (key) {
      var again = region.querySelector('[href="' + CSS.escape(key) + '"]');
      if (again) again.focus();
    }
  }

  var timer = null;
  var busy = false;

  function poll() {
    if (busy) return;
    if (document.hidden) return schedule();
    busy = true;
    fetch(window.location.href, { headers: { Accept: "text/html" }, cache: "no-store",
                                  credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) {
        if (html === null) return;
        var page = new DOMParser().parseFromString(html, "text/html");
        regions.forEach(function (region) {
          var fresh = region.id && page.getElementById(region.id);
          if (fresh) replace(region, fresh);
        });
        every = parseInt(page.body.getAttribute("data-refresh") || "0", 10);
        document.body.setAttribute("data-refresh", String(every));
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { busy = false; schedule(); });
  }

  function schedule() {
    window.clearTimeout(timer);
    if (every > 0) timer = window.setTimeout(poll, every);
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && every > 0) poll();
  });
  schedule();
})();
