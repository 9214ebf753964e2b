// farm console: the only script the pages run (no inline script: the CSP forbids it).
// It refreshes the account in the header every 2 s and applies a filter as soon as a box or
// the time range changes; without it every page still works by its forms and links.
"use strict";

function refreshAccount() {
  const box = document.getElementById("account");
  if (!box) return;
  fetch("/ui/account", {credentials: "same-origin", cache: "no-store"})
    .then((r) => (r.ok ? r.json() : null))
    .then((doc) => {
      if (!doc) return;
      for (const f of doc.figures) {
        const cell = box.querySelector(`[data-name="${f.name}"]`);
        if (!cell) continue;
        cell.querySelector(".value").textContent = f.value;
        cell.querySelector(".rate").textContent = f.rate === null ? "\u00a0" : `${f.rate.toFixed(1)}/s`;
      }
      const dead = box.querySelector('[data-name="dead_letters"] .value');
      if (dead) dead.textContent = doc.dead_letters;
    })
    .catch(() => {});
}

document.addEventListener("DOMContentLoaded", () => {
  setInterval(refreshAccount, 2000);
  const form = document.getElementById("filters");
  if (form) {
    form.querySelectorAll("input[type=checkbox], select").forEach((el) =>
      el.addEventListener("change", () => form.submit()));
  }
});
