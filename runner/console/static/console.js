// The console's only script: the live run page (Server-Sent Events) and the runs list's refresh.
// Everything from a run is written with textContent, never as HTML.
"use strict";

function followRun(section) {
  const source = new EventSource(section.dataset.live);
  source.onmessage = (message) => {
    const run = JSON.parse(message.data);
    const status = document.getElementById("run-status");
    if (status) { status.textContent = run.status; status.className = "status s-" + run.status; }
    const elapsed = document.getElementById("run-elapsed");
    if (elapsed) { elapsed.textContent = run.elapsed; elapsed.className = run.over ? "over" : ""; }
    for (const step of run.steps) {
      let card = section.querySelector(`article[data-key="${CSS.escape(step.key)}"]`);
      if (!card) {
        card = document.createElement("article");
        card.className = "step";
        card.dataset.key = step.key;
        const h = document.createElement("h3");
        for (const cls of ["label", "title", "status"]) {
          const span = document.createElement("span");
          span.className = cls;
          h.append(span, " ");
        }
        const why = document.createElement("p");
        why.className = "why";
        const pre = document.createElement("pre");
        pre.className = "output";
        card.append(h, why, pre);
        section.append(card);
      }
      card.querySelector(".label").textContent = step.label;
      card.querySelector(".title").textContent = step.title;
      const badge = card.querySelector(".status");
      badge.textContent = step.status;
      badge.className = "status s-" + step.status;
      card.querySelector(".why").textContent = step.why;
      card.querySelector(".output").textContent = step.output;
    }
    document.body.dataset.runStatus = run.status;
  };
  source.addEventListener("end", () => { source.close(); document.body.dataset.live = "ended"; });
}

function refreshRows(table) {
  setInterval(async () => {
    const answer = await fetch(table.dataset.refresh, { credentials: "same-origin" });
    if (!answer.ok) return;
    // Our own server's page, rendered with autoescape: a fragment of table rows.
    const holder = document.createElement("tbody");
    holder.innerHTML = await answer.text();
    table.tBodies[0].replaceWith(holder);
  }, 3000);
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-live]");
  if (live) followRun(live);
  const table = document.querySelector("table[data-refresh]");
  if (table) refreshRows(table);
});
