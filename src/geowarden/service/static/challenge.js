// geowarden challenge page: a phone number, then the code sent to it; no login, no data from elsewhere.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const start = document.getElementById("start");
  const verify = document.getElementById("verify");
  const result = document.getElementById("result");
  if (!start || !verify || !result) return;
  const ref = start.elements.ref.value;

  async function post(path, body) {
    const resp = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    let doc = {};
    try { doc = await resp.json(); } catch (_err) { doc = {}; }
    return { ok: resp.ok, status: resp.status, doc };
  }

  function problem(doc, fallback) {
    return typeof doc.detail === "string" ? doc.detail : fallback;
  }

  start.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = document.getElementById("send");
    button.disabled = true;
    result.textContent = "";
    try {
      const r = await post("/v1/challenge", { ref, phone: start.elements.phone.value });
      if (!r.ok) throw new Error(problem(r.doc, "The code could not be sent (HTTP " + r.status + ")."));
      verify.elements.challenge_id.value = r.doc.challenge_id;
      document.getElementById("sent").textContent = "A code was sent to " + r.doc.masked + ".";
      start.hidden = true;
      verify.hidden = false;
      document.getElementById("code").focus();
    } catch (err) {
      result.textContent = err.message;
      button.disabled = false;
    }
  });

  verify.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = document.getElementById("check");
    button.disabled = true;
    try {
      const r = await post("/v1/challenge/verify", {
        ref, challenge_id: verify.elements.challenge_id.value, code: verify.elements.code.value,
      });
      if (!r.ok) throw new Error(problem(r.doc, "The code could not be checked (HTTP " + r.status + ")."));
      if (r.doc.verified) {
        verify.hidden = true;
        result.textContent = "Thank you, you are verified. You can go back and try again.";
        return;
      }
      const left = r.doc.attempts_left;
      result.textContent = r.doc.outcome === "wrong_code"
        ? "That code is not right. " + left + " attempt" + (left === 1 ? "" : "s") + " left."
        : "This code can no longer be used. Please start again.";
      if (r.doc.outcome !== "wrong_code") { verify.hidden = true; start.hidden = false; document.getElementById("send").disabled = false; }
      else button.disabled = false;
    } catch (err) {
      result.textContent = err.message;
      button.disabled = false;
    }
  });
});
