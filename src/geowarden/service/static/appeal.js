// geowarden appeal page: sends the appeal as JSON; no login, no data from elsewhere.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("appeal");
  const done = document.getElementById("done");
  if (!form || !done) return;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    let ok = false;
    let again = false;
    try {
      const resp = await fetch("/v1/appeals", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ref: form.elements.ref.value, message: form.elements.message.value }),
      });
      ok = resp.ok;
      again = resp.status === 409; // one appeal per decision: the first one is already queued
    } catch (_err) {
      ok = false;
    }
    done.textContent = ok
      ? "Thank you. Your appeal has been received and will be reviewed."
      : again
        ? "An appeal for this decision was already received; it will be reviewed."
        : "Sorry, the appeal could not be sent. Please try again later.";
    if (again) form.hidden = true;
    if (ok) form.hidden = true;
    else if (button) button.disabled = false;
  });
});
