// lvsmon's pages update in place: every step the page is fetched again
// and each element marked data-live is swapped for its new version, so
// scroll position and keyboard focus stay (an element holding the focus
// waits for the next round), and graphs are loaded in the background and
// swapped when complete, so they never blank. Without JavaScript the
// pages refresh themselves (a meta refresh inside <noscript>).
(function () {
  "use strict";
  var step = Math.max(1, Number(document.body.getAttribute("data-step")) || 10);
  var busy = false;
  var status = document.getElementById("live-status");

  function say(text) {
    if (status) status.textContent = text;
  }

  function focusedIn(el) {
    var a = document.activeElement;
    return a && a !== document.body && el.contains(a);
  }

  function swap(doc) {
    document.title = doc.title;
    var live = document.querySelectorAll("[data-live]");
    for (var i = 0; i < live.length; i++) {
      var el = live[i];
      var next = doc.getElementById(el.id);
      if (!next || focusedIn(el)) continue;
      el.replaceWith(document.importNode(next, true));
    }
  }

  // Graphs: fetched afresh, shown once decoded.
  function refreshGraphs() {
    var imgs = document.querySelectorAll("img[data-refresh]");
    Array.prototype.forEach.call(imgs, function (img) {
      var src = img.getAttribute("data-refresh");
      fetch(src, { cache: "no-store", credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.blob(); })
        .then(function (b) {
          var u = URL.createObjectURL(b);
          var pre = new Image();
          pre.onload = function () {
            var old = img.src;
            img.src = u;
            if (old.indexOf("blob:") === 0) URL.revokeObjectURL(old);
          };
          pre.src = u;
        })
        .catch(function () { /* the next step tries again */ });
    });
  }

  function tick() {
    if (busy || document.hidden) return;
    busy = true;
    var asked = Date.now();
    fetch(location.href, { cache: "no-store", credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (r) {
        if (r.redirected) { location.reload(); return null; } // signed out: the login page
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      })
      .then(function (html) {
        if (html === null) return;
        swap(new DOMParser().parseFromString(html, "text/html"));
        // When the page shown was asked for: how fresh it is, for a
        // script (or a test) to tell.
        document.body.setAttribute("data-live-asked", String(asked));
        refreshGraphs();
        say("live, updated " + new Date().toLocaleTimeString());
      })
      .catch(function (e) { say("live update failed (" + e.message + "); retrying"); })
      .then(function () { busy = false; });
  }

  say("live");
  setInterval(tick, step * 1000);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) tick(); });
})();
