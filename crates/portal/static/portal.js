// Progressive enhancement only: every action works without this file.
// - Copy buttons copy the field next to them.
// - While a synchronization runs, its progress line is refreshed from
//   /portal/api/sync, and the page reloads to show the report when it ends.
"use strict";

const POLL_MS = 1500;

function progressText(p) {
  if (!p) return "A synchronization is running…";
  const c = p.counts;
  return `A synchronization is running… so far ${c.created} created, ${c.updated} updated, ` +
    `${c.deactivated} deactivated, ${c.reactivated} reactivated, ${c.failed} failed.`;
}

async function followSync(line) {
  try {
    const res = await fetch("/portal/api/sync", { credentials: "same-origin", cache: "no-store" });
    if (res.ok) {
      const status = await res.json();
      if (!status.running) {
        window.location.replace("/portal#preview");
        return;
      }
      line.textContent = progressText(status.progress);
    }
  } catch (_) {
    // A dropped poll is retried on the next tick.
  }
  setTimeout(() => followSync(line), POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const field = document.getElementById(button.dataset.copy);
      if (!field) return;
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (_) {
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  }
  const running = document.getElementById("sync-running");
  if (running) setTimeout(() => followSync(running), POLL_MS);
});
