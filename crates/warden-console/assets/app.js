// Warden console: keeps the pending-approvals list current without a reload.
// Polls /console/fragment/approvals and swaps the list in when its data-tag changed,
// keeping any reason already typed.
(function () {
  "use strict";
  var cfg = document.getElementById("poll");
  var every = cfg ? parseInt(cfg.getAttribute("data-ms"), 10) || 1500 : 1500;
  function typedReasons() {
    var out = {};
    document.querySelectorAll("form.decide").forEach(function (f) {
      var t = f.querySelector("textarea[name=reason]");
      if (t && t.value) out[f.getAttribute("data-id")] = t.value;
    });
    return out;
  }
  function refresh() {
    fetch("/console/fragment/approvals", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) { window.location = "/console/login"; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var cur = document.getElementById("approvals");
        var tmp = document.createElement("div");
        tmp.innerHTML = html;
        var next = tmp.querySelector("#approvals");
        if (!cur || !next || cur.getAttribute("data-tag") === next.getAttribute("data-tag")) return;
        var keep = typedReasons();
        cur.replaceWith(next);
        Object.keys(keep).forEach(function (id) {
          var f = next.querySelector('form.decide[data-id="' + id + '"] textarea[name=reason]');
          if (f) f.value = keep[id];
        });
        var n = next.getAttribute("data-pending");
        document.title = (n && n !== "0" ? "(" + n + ") " : "") + "Warden: pending approvals";
      })
      .catch(function () {})
      .then(function () { setTimeout(refresh, every); });
  }
  setTimeout(refresh, every);
})();
