/* secops-runbooks site: follow-along checkboxes and the index filters.
 * No network access: state lives in localStorage, keyed by runbook id. */
(function () {
  "use strict";

  var PREFIX = "runbooks:follow:";

  function load(key) {
    try {
      var value = JSON.parse(window.localStorage.getItem(key) || "[]");
      return Array.isArray(value) ? value : [];
    } catch (err) {
      return []; // storage disabled or a corrupt value: start from nothing
    }
  }

  function save(key, ids) {
    try {
      if (ids.length) {
        window.localStorage.setItem(key, JSON.stringify(ids));
      } else {
        window.localStorage.removeItem(key);
      }
    } catch (err) {
      /* private mode: the boxes still work for this visit */
    }
  }

  function followAlong(bar) {
    var key = PREFIX + bar.getAttribute("data-runbook");
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input.rb-check-box"));
    var progress = bar.querySelector(".rb-progress");
    var saved = load(key);

    function checkedIds() {
      return boxes.filter(function (b) { return b.checked; })
        .map(function (b) { return b.getAttribute("data-step"); });
    }

    function update() {
      var done = checkedIds().length;
      progress.textContent = done + " of " + boxes.length + " done";
      bar.classList.toggle("rb-follow--complete", boxes.length > 0 && done === boxes.length);
      boxes.forEach(function (b) {
        var meta = b.closest(".rb-step-meta");
        var heading = meta && meta.previousElementSibling;
        if (meta) meta.classList.toggle("rb-step-meta--done", b.checked);
        if (heading) heading.classList.toggle("rb-step--done", b.checked);
      });
    }

    boxes.forEach(function (box) {
      box.disabled = false;
      box.checked = saved.indexOf(box.getAttribute("data-step")) >= 0;
      box.addEventListener("change", function () {
        save(key, checkedIds());
        update();
      });
    });
    bar.querySelector(".rb-reset").addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; });
      save(key, []);
      update();
    });
    bar.classList.add("rb-follow--ready");
    update();
  }

  function filters(panel) {
    var rows = Array.prototype.slice.call(document.querySelectorAll(".rb-index tbody tr"));
    var selects = Array.prototype.slice.call(panel.querySelectorAll("select[data-filter]"));
    var count = panel.querySelector(".rb-filter-count");

    function matches(row) {
      return selects.every(function (s) {
        var want = s.value;
        var key = s.getAttribute("data-filter");
        var have = row.getAttribute("data-" + key) || "";
        if (!want) return true;
        return key === "role" ? have.indexOf("|" + want + "|") >= 0 : have === want;
      });
    }

    function apply() {
      var shown = 0;
      rows.forEach(function (row) {
        var ok = matches(row);
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      count.textContent = shown + " of " + rows.length + " shown";
    }

    selects.forEach(function (s) { s.addEventListener("change", apply); });
    panel.hidden = false;
    apply();
  }

  function setup() {
    var bar = document.querySelector(".rb-follow");
    if (bar && !bar.classList.contains("rb-follow--ready")) followAlong(bar);
    var panel = document.querySelector(".rb-filters");
    if (panel && panel.hidden) filters(panel);
  }

  // Material's instant navigation swaps pages without a load event; it announces each on document$.
  if (typeof window.document$ !== "undefined") {
    window.document$.subscribe(setup);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setup);
  } else {
    setup();
  }
})();
