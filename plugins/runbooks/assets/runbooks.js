/* secops-runbooks site: follow-along checkboxes and the index filters.
 * No network access. Follow-along state lives in localStorage, keyed by runbook and incident id
 * (`runbooks:follow:<runbook>:<incident>` -> {started, ticks: {step: time}}), so a drill's ticks
 * never show in another incident; `runbooks:follow:<runbook>` names the incident in progress.
 * The index filters live in the URL (`?service=...&severity=...&role=...`). */
(function () {
  "use strict";

  var PREFIX = "runbooks:follow:";

  function read(key, fallback) {
    try {
      var value = JSON.parse(window.localStorage.getItem(key) || "null");
      return value === null ? fallback : value;
    } catch (err) {
      return fallback; // storage disabled or a corrupt value: start from nothing
    }
  }

  function write(key, value) {
    try {
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, JSON.stringify(value));
      }
    } catch (err) {
      /* private mode: the boxes still work for this visit */
    }
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // Local time, as a responder's own clock shows it, with the date: a session may span midnight.
  function stamp(iso) {
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  function newSessionId() {
    var now = new Date().toISOString();
    return "session-" + now.slice(0, 16).replace(/[-:]/g, "").replace("T", "-");
  }

  function followAlong(bar) {
    var runbook = bar.getAttribute("data-runbook");
    var current = PREFIX + runbook;
    var boxes = Array.prototype.slice.call(document.querySelectorAll("input.rb-check-box"));
    var field = bar.querySelector(".rb-incident-id");
    var started = bar.querySelector(".rb-started");
    var progress = bar.querySelector(".rb-progress");
    var params = new URLSearchParams(window.location.search);
    var incident = params.get("incident") || read(current, "") || "";
    var state = null;

    function key() { return current + ":" + incident; }

    function load() {
      state = incident ? read(key(), null) : null;
      if (state && (typeof state !== "object" || typeof state.ticks !== "object")) state = null;
    }

    function start() {
      if (!incident) incident = (field.value || "").trim() || newSessionId();
      if (!state) state = { started: new Date().toISOString(), ticks: {} };
      write(current, incident);
      write(key(), state);
    }

    function update() {
      var ticks = state ? state.ticks : {};
      var done = 0;
      field.value = incident;
      started.textContent = state ? "started " + stamp(state.started) : "not started";
      boxes.forEach(function (b) {
        var at = ticks[b.getAttribute("data-step")];
        var time = b.parentNode.querySelector(".rb-tick");
        b.checked = Boolean(at);
        if (at) done += 1;
        if (time) {
          time.textContent = at ? stamp(at).slice(11) : "";
          if (at) time.setAttribute("datetime", at); else time.removeAttribute("datetime");
          time.title = at ? stamp(at) : "";
        }
        var meta = b.closest(".rb-step-meta");
        var heading = meta && meta.previousElementSibling;
        if (meta) meta.classList.toggle("rb-step-meta--done", b.checked);
        if (heading) heading.classList.toggle("rb-step--done", b.checked);
      });
      progress.textContent = done + " of " + boxes.length + " done";
      bar.classList.toggle("rb-follow--complete", boxes.length > 0 && done === boxes.length);
    }

    function checklist() {
      var name = bar.getAttribute("data-name") || runbook;
      var head = "# " + name + " — " + (incident || "no incident") +
        (state ? " (started " + stamp(state.started) + ")" : "");
      var items = boxes.map(function (b) {
        var at = state ? state.ticks[b.getAttribute("data-step")] : null;
        return "- [" + (at ? "x" : " ") + "] " + b.getAttribute("data-title") +
          (at ? " (" + stamp(at) + ")" : "");
      });
      return [head, ""].concat(items).join("\n") + "\n";
    }

    function copy(text) {
      bar.setAttribute("data-checklist", text);
      if (navigator.clipboard && window.isSecureContext) {
        return navigator.clipboard.writeText(text);
      }
      var area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      try { document.execCommand("copy"); } finally { area.remove(); }
      return Promise.resolve();
    }

    boxes.forEach(function (box) {
      box.disabled = false;
      box.addEventListener("change", function () {
        start();
        var step = box.getAttribute("data-step");
        if (box.checked) state.ticks[step] = new Date().toISOString();
        else delete state.ticks[step];
        write(key(), state);
        update();
      });
    });
    field.addEventListener("change", function () {
      // Another incident id: that incident's own ticks (none, for a new one).
      incident = field.value.trim();
      write(current, incident || null);
      load();
      update();
    });
    bar.querySelector(".rb-copy").addEventListener("click", function () {
      var button = this;
      copy(checklist()).then(function () {
        button.textContent = "Copied";
        window.setTimeout(function () { button.textContent = "Copy checklist"; }, 2000);
      });
    });
    bar.querySelector(".rb-reset").addEventListener("click", function () {
      // A new incident starts empty; the previous one's ticks stay stored under its own id.
      incident = "";
      state = null;
      write(current, null);
      update();
      field.focus();
    });
    load();
    bar.classList.add("rb-follow--ready");
    update();
    // Material's back-to-top button goes below the bar, however many lines the bar wraps to.
    function measure() {
      document.documentElement.style.setProperty("--rb-bar-height", bar.offsetHeight + "px");
    }
    if (typeof ResizeObserver !== "undefined") new ResizeObserver(measure).observe(bar);
    measure();
  }

  function filters(panel) {
    var table = document.querySelector(".rb-index table");
    var rows = Array.prototype.slice.call(table.querySelectorAll("tr.rb-row"));
    var groups = Array.prototype.slice.call(table.querySelectorAll("tbody.rb-group"));
    var nomatch = table.querySelector(".rb-nomatch");
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

    function toUrl() {
      var params = new URLSearchParams(window.location.search);
      selects.forEach(function (s) {
        if (s.value) params.set(s.getAttribute("data-filter"), s.value);
        else params.delete(s.getAttribute("data-filter"));
      });
      var query = params.toString();
      var url = window.location.pathname + (query ? "?" + query : "") + window.location.hash;
      try { window.history.replaceState(window.history.state, "", url); } catch (err) { /* file:// in some browsers */ }
    }

    function apply() {
      var shown = 0;
      rows.forEach(function (row) {
        var ok = matches(row);
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      groups.forEach(function (g) { g.hidden = !g.querySelector("tr.rb-row:not([hidden])"); });
      nomatch.hidden = shown > 0;
      count.textContent = shown + " of " + rows.length + " shown";
    }

    var params = new URLSearchParams(window.location.search);
    selects.forEach(function (s) {
      var want = params.get(s.getAttribute("data-filter"));
      if (want !== null && Array.prototype.some.call(s.options, function (o) { return o.value === want; })) {
        s.value = want;
      } else if (want !== null) {
        // A value no runbook has (a stale link): kept, so the "no match" row says so.
        var option = new Option(want, want);
        s.add(option);
        s.value = want;
      }
      s.addEventListener("change", function () { toUrl(); apply(); });
    });
    nomatch.querySelector(".rb-clear").addEventListener("click", function () {
      selects.forEach(function (s) { s.value = ""; });
      toUrl();
      apply();
    });
    panel.hidden = false;
    apply();
  }

  // On a phone the runbook's introduction folds to its first lines, so step 1 is on the first
  // screen; a tap shows it all. Its admonitions (the author's warnings) never fold.
  var PHONE = "(max-width: 44.9375em)";

  function about(box) {
    if (!window.matchMedia || !window.matchMedia(PHONE).matches) return;
    var paragraphs = box.querySelectorAll(":scope > p");
    if (!paragraphs.length) return;
    box.classList.add("rb-about--folded");
    var more = document.createElement("button");
    more.type = "button";
    more.className = "rb-about-more";
    more.textContent = "Read the whole introduction";
    more.addEventListener("click", function () {
      box.classList.remove("rb-about--folded");
      more.remove();
    });
    paragraphs[0].after(more);
  }

  function setup() {
    var intro = document.querySelector(".rb-about");
    if (intro && !intro.classList.contains("rb-about--folded")) about(intro);
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
