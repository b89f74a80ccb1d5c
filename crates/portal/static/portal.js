// Progressive enhancement only: every action works without this file.
// - Copy buttons copy the field next to them.
// - While a synchronization runs, the page reloads itself every few
//   seconds until the report is there.
"use strict";
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
  if (document.getElementById("sync-running")) {
    setTimeout(() => { window.location.replace("/portal#preview"); }, 3000);
  }
});
