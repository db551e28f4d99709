// Tabs on the report page (keyboard: arrows, Home, End) and copy buttons. Without this
// script every panel simply shows, one after the other.
(function () {
  document.documentElement.classList.add("js");
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[role=tab]"));
  function select(tab, focus, remember) {
    tabs.forEach(function (t) {
      var on = t === tab;
      t.setAttribute("aria-selected", on ? "true" : "false");
      t.tabIndex = on ? 0 : -1;
      var panel = document.getElementById(t.getAttribute("aria-controls"));
      if (panel) panel.hidden = !on;
    });
    if (focus) tab.focus();
    if (remember && history.replaceState) history.replaceState(null, "", "#" + tab.getAttribute("aria-controls"));
  }
  tabs.forEach(function (tab, i) {
    tab.addEventListener("click", function () { select(tab, false, true); });
    tab.addEventListener("keydown", function (e) {
      var next = null;
      if (e.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
      else if (e.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
      else if (e.key === "Home") next = tabs[0];
      else if (e.key === "End") next = tabs[tabs.length - 1];
      if (next) { e.preventDefault(); select(next, true, true); }
    });
  });
  if (tabs.length) {
    var wanted = location.hash.slice(1);
    var initial = tabs.filter(function (t) { return t.getAttribute("aria-controls") === wanted; })[0] || tabs[0];
    select(initial, false, false);
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (b) {
    b.addEventListener("click", function () {
      if (navigator.clipboard) navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () { b.textContent = "Copied"; }, function () {});
    });
  });
})();
