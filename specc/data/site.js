/* The docs site's search: the index is window.SPECC_SEARCH, a list of
   [kind, title, url, text] set by search-index.js, so it works from file://. */
(function () {
  "use strict";
  var box = document.getElementById("search-box");
  var list = document.getElementById("search-results");
  var index = window.SPECC_SEARCH || [];
  if (!box || !list) { return; }
  var MAX = 25;
  var lowered = index.map(function (e) {
    return { id: e[1].toLowerCase(), text: e[3].toLowerCase() };
  });

  function score(i, terms, whole) {
    var e = lowered[i];
    var s = 0;
    if (e.id === whole) { s += 100; }
    else if (e.id.indexOf(whole) === 0) { s += 40; }
    else if (e.id.indexOf(whole) >= 0) { s += 20; }
    for (var t = 0; t < terms.length; t++) {
      var inTitle = e.id.indexOf(terms[t]) >= 0;
      var inText = e.text.indexOf(terms[t]) >= 0;
      if (!inTitle && !inText) { return 0; }
      s += inTitle ? 5 : 1;
    }
    return s;
  }

  function snippet(text, term) {
    var at = text.toLowerCase().indexOf(term);
    if (at < 0) { return text.slice(0, 140); }
    var from = Math.max(0, at - 60);
    return (from > 0 ? "\u2026" : "") + text.slice(from, from + 160);
  }

  function show(query) {
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var whole = query.trim().toLowerCase();
    if (whole.length < 2) { return; }
    var terms = whole.split(/\s+/);
    var hits = [];
    for (var i = 0; i < index.length; i++) {
      var s = score(i, terms, whole);
      if (s > 0) { hits.push([s, i]); }
    }
    hits.sort(function (a, b) { return b[0] - a[0] || a[1] - b[1]; });
    if (!hits.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "Nothing found for \u201c" + query.trim() + "\u201d";
      list.appendChild(none);
      return;
    }
    hits.slice(0, MAX).forEach(function (h) {
      var e = index[h[1]];
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = e[2];
      var kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e[0];
      a.appendChild(kind);
      a.appendChild(document.createTextNode(e[1]));
      var sn = document.createElement("span");
      sn.className = "snippet";
      sn.textContent = snippet(e[3], terms[0]);
      a.appendChild(sn);
      li.appendChild(a);
      list.appendChild(li);
    });
  }

  box.addEventListener("input", function () { show(box.value); });
  box.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { box.value = ""; show(""); }
    if (ev.key === "Enter") {
      var first = list.querySelector("a");
      if (first) { window.location.href = first.href; }
    }
  });
  document.addEventListener("click", function (ev) {
    if (!list.contains(ev.target) && ev.target !== box) { show(""); }
  });
}());
