// geowarden operator dashboard.
//
// Reads /v1/stats and /v1/review with the session cookie (HttpOnly, set by /login), colours the
// world map served at /map/world.svg, and posts review verdicts to /v1/review/{id}.
// Everything from the server is put on the page as text (textContent, attributes through the DOM),
// never as HTML; no library, nothing fetched from another host.
"use strict";

(() => {
  const ACTIONS = ["allow", "limited", "challenge", "review", "block"];
  const STATS_EVERY_MS = 5000;
  const QUEUE_EVERY_MS = 10000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const STATE_FILL = { allow: "#2da44e", hold: "#d4a72c", mixed: "#fb8f44", block: "#cf222e" };

  const $ = (id) => document.getElementById(id);
  const state = { stats: null, mapReady: false, queueIds: "", statsRuns: 0, queueOffset: 0, queueTotal: 0 };

  // -- helpers --------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, String(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  const fmt = (n) => Number(n || 0).toLocaleString("en-US");
  const sum = (obj) => Object.values(obj || {}).reduce((a, b) => a + Number(b || 0), 0);

  function utc(ts) {
    const d = new Date(ts * 1000);
    return d.toISOString().slice(0, 16).replace("T", " ");
  }

  // The network an address is in (/24 for IPv4, /48 for IPv6): enough to judge, no full address.
  function network(ip) {
    if (typeof ip !== "string" || ip === "") return "–";
    if (ip.includes(":")) {
      const [head, tail] = ip.split("::");
      const h = head ? head.split(":") : [];
      const t = tail !== undefined && tail ? tail.split(":") : [];
      const groups = tail === undefined ? h : h.concat(Array(Math.max(0, 8 - h.length - t.length)).fill("0"), t);
      if (groups.length < 3) return "–";
      return groups.slice(0, 3).map((g) => g.replace(/^0+(?=.)/, "")).join(":") + "::/48";
    }
    const parts = ip.split(".");
    if (parts.length !== 4) return "–";
    return parts.slice(0, 3).join(".") + ".0/24";
  }

  async function api(path, options) {
    const resp = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
    if (resp.status === 401) {
      window.location.assign("/login");
      throw new Error("signed out");
    }
    return resp;
  }

  function windowHours() {
    const v = Number($("window").value);
    return Number.isFinite(v) && v > 0 ? v : 24;
  }

  // -- counts ---------------------------------------------------------------------------------

  function renderCounts(stats) {
    const by = stats.by_action || {};
    for (const a of ACTIONS) $("count-" + a).textContent = fmt(by[a]);
    $("count-total").textContent = fmt(sum(by));
  }

  // -- the map --------------------------------------------------------------------------------

  async function loadMap() {
    const box = $("map");
    try {
      const resp = await fetch("/map/world.svg", { credentials: "same-origin" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const doc = new DOMParser().parseFromString(await resp.text(), "image/svg+xml");
      const root = doc.documentElement;
      if (root.nodeName !== "svg" || doc.getElementsByTagName("parsererror").length) throw new Error("not an SVG");
      for (const s of root.querySelectorAll("script, foreignObject")) s.remove(); // geometry only
      box.replaceChildren(document.importNode(root, true));
      state.mapReady = true;
      if (state.stats) colourMap(state.stats);
    } catch (err) {
      box.replaceChildren(el("p", { class: "empty" }, "The world map is not available (" + err.message + ")."));
    }
    box.setAttribute("aria-busy", "false");
  }

  function countryState(c) {
    const blocked = Number(c.block || 0);
    const allowed = Number(c.allow || 0) + Number(c.limited || 0);
    const held = Number(c.challenge || 0) + Number(c.review || 0);
    const total = blocked + allowed + held;
    if (total === 0) return null;
    if (blocked > 0) return blocked / total >= 0.5 ? "block" : "mixed";
    return allowed >= held ? "allow" : "hold";
  }

  function colourMap(stats) {
    const by = stats.by_country || {};
    const totals = Object.values(by).map(sum);
    const max = Math.max(1, ...totals);
    for (const g of document.querySelectorAll("#map .country")) {
      const cc = g.dataset.cc;
      const c = by[cc];
      const title = g.querySelector("title");
      const name = title ? (title.dataset.name || (title.dataset.name = title.textContent)) : cc;
      const st = c ? countryState(c) : null;
      g.dataset.state = st || "none";
      if (!st) {
        g.style.fill = "";
        g.style.fillOpacity = "";
        if (title) title.textContent = name;
        continue;
      }
      g.style.fill = STATE_FILL[st];
      // Volume as opacity (log scale), so a country with one decision does not shout.
      g.style.fillOpacity = String(0.55 + 0.45 * (Math.log1p(sum(c)) / Math.log1p(max)));
      if (title) {
        title.textContent =
          name + ": " + fmt(c.block) + " blocked, " + fmt(Number(c.allow || 0) + Number(c.limited || 0)) +
          " allowed, " + fmt(Number(c.challenge || 0) + Number(c.review || 0)) + " challenged or held";
      }
    }
  }

  function countryLabel(cc) {
    if (cc === "??") return "unknown / private";
    const t = document.querySelector("#cc-" + CSS.escape(cc) + " > title");
    return t ? (t.dataset.name || t.textContent) : cc;
  }

  function renderCountries(stats) {
    const rows = Object.entries(stats.by_country || {})
      .map(([cc, c]) => ({
        cc,
        blocked: Number(c.block || 0),
        allowed: Number(c.allow || 0) + Number(c.limited || 0),
        other: Number(c.challenge || 0) + Number(c.review || 0),
      }))
      .sort((a, b) => b.blocked - a.blocked || b.allowed + b.other - (a.allowed + a.other) || a.cc.localeCompare(b.cc))
      .slice(0, 15);
    $("countries").tBodies[0].replaceChildren(
      ...rows.map((r) =>
        el("tr", { dataset: { cc: r.cc } },
          el("td", {}, countryLabel(r.cc)),
          el("td", { class: "n block" }, fmt(r.blocked)),
          el("td", { class: "n allow" }, fmt(r.allowed)),
          el("td", { class: "n" }, fmt(r.other))),
      ),
    );
    $("countries-empty").hidden = rows.length > 0;
  }

  // -- charts (inline SVG) --------------------------------------------------------------------

  function hourBuckets(hours) {
    const now = Math.floor(Date.now() / 3600000) * 3600;
    const n = Math.max(1, Math.min(Math.ceil(hours), 24 * 31));
    const out = [];
    for (let i = n - 1; i >= 0; i--) out.push(now - i * 3600);
    return out;
  }

  function renderSeries(stats) {
    const buckets = hourBuckets(windowHours());
    const index = new Map(buckets.map((h, i) => [h, i]));
    const stacks = buckets.map(() => ({}));
    for (const p of stats.series || []) {
      const i = index.get(p.hour);
      if (i !== undefined) stacks[i][p.action] = (stacks[i][p.action] || 0) + Number(p.n || 0);
    }
    const W = 640, H = 200, left = 44, bottom = 22, top = 22;
    const max = Math.max(1, ...stacks.map(sum));
    const plotW = W - left - 8, plotH = H - top - bottom;
    const bw = plotW / buckets.length;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Decisions by hour and action" });
    root.append(svg("line", { class: "axis", x1: left, y1: H - bottom, x2: W - 8, y2: H - bottom }));
    root.append(svg("text", { x: left - 6, y: top + 4, "text-anchor": "end" }, fmt(max)));
    root.append(svg("text", { x: left - 6, y: H - bottom, "text-anchor": "end" }, "0"));
    stacks.forEach((stack, i) => {
      let y = H - bottom;
      for (const a of ACTIONS) {
        const n = stack[a] || 0;
        if (!n) continue;
        const h = (n / max) * plotH;
        y -= h;
        const r = svg("rect", {
          class: "bar-" + a, x: left + i * bw + bw * 0.1, y, width: Math.max(1, bw * 0.8), height: h,
        });
        r.append(svg("title", {}, `${utc(buckets[i])} UTC: ${fmt(n)} ${a}`));
        root.append(r);
      }
    });
    const step = Math.max(1, Math.ceil(buckets.length / 8));
    buckets.forEach((h, i) => {
      if (i % step === 0 || i === buckets.length - 1) {
        const label = buckets.length > 48 ? utc(h).slice(5, 10) : utc(h).slice(11, 16);
        root.append(svg("text", { x: left + i * bw + bw / 2, y: H - 6, "text-anchor": "middle" }, label));
      }
    });
    let x = left;
    for (const a of ACTIONS) {
      root.append(svg("rect", { class: "bar-" + a, x, y: 4, width: 10, height: 10 }));
      root.append(svg("text", { class: "legend-row", x: x + 14, y: 13 }, a));
      x += 22 + a.length * 7.5;
    }
    $("series-actions").replaceChildren(root);
  }

  function sparkline(buckets, counts) {
    const W = 180, H = 26;
    const max = Math.max(1, ...counts);
    const bw = W / buckets.length;
    const root = svg("svg", { class: "spark", width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
    counts.forEach((n, i) => {
      if (!n) return;
      const h = Math.max(1, (n / max) * (H - 2));
      const r = svg("rect", { class: "bar-reason", x: i * bw, y: H - h, width: Math.max(1, bw * 0.85), height: h });
      r.append(svg("title", {}, `${utc(buckets[i])} UTC: ${fmt(n)}`));
      root.append(r);
    });
    root.append(svg("line", { class: "axis", x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5 }));
    return root;
  }

  function renderReasons(stats) {
    const buckets = hourBuckets(windowHours());
    const index = new Map(buckets.map((h, i) => [h, i]));
    const perReason = new Map();
    for (const p of stats.reason_series || []) {
      if (!perReason.has(p.reason)) perReason.set(p.reason, buckets.map(() => 0));
      const i = index.get(p.hour);
      if (i !== undefined) perReason.get(p.reason)[i] += Number(p.n || 0);
    }
    const top = Object.entries(stats.by_reason || {}).slice(0, 8);
    $("reasons").tBodies[0].replaceChildren(
      ...top.map(([code, n]) =>
        el("tr", {},
          el("td", {}, el("span", { class: "chip" }, code)),
          el("td", { class: "n" }, fmt(n)),
          el("td", {}, perReason.has(code) ? sparkline(buckets, perReason.get(code)) : "")),
      ),
    );
    $("reasons-empty").hidden = top.length > 0;
  }

  function renderAsns(stats) {
    const rows = stats.by_asn || [];
    $("asns").tBodies[0].replaceChildren(
      ...rows.slice(0, 15).map((r) =>
        el("tr", {},
          el("td", {}, "AS" + Number(r.asn)),
          el("td", {}, r.org ? r.org : el("span", { class: "muted" }, "—")),
          el("td", { class: "n" }, fmt(r.n)),
          el("td", { class: "n block" }, fmt((r.by_action || {}).block))),
      ),
    );
    $("asns-empty").hidden = rows.length > 0;
  }

  async function refreshStats() {
    try {
      const resp = await api("/v1/stats?hours=" + encodeURIComponent(windowHours()));
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const stats = await resp.json();
      state.stats = stats;
      renderCounts(stats);
      if (state.mapReady) colourMap(stats);
      renderCountries(stats);
      renderSeries(stats);
      renderReasons(stats);
      renderAsns(stats);
      state.statsRuns += 1;
      document.body.dataset.statsRuns = String(state.statsRuns);
      $("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
    } catch (err) {
      $("updated").textContent = "could not refresh (" + err.message + ")";
    }
  }

  // -- the review queue -----------------------------------------------------------------------

  const PAGE = 50;

  function tokenChoice(enabled) {
    const s = el("select", { "aria-label": "allowlist token on overturn" });
    for (const [v, label] of [["", "no token"], ["1", "1 day"], ["7", "7 days"], ["30", "30 days"]]) {
      s.append(el("option", { value: v }, label));
    }
    // A token clears the softer rules; a restricted jurisdiction or Tor only when chosen here.
    const clears = [["restricted", "restricted country"], ["tor", "Tor"]].map(([v, label]) =>
      el("label", { class: "clears" }, el("input", { type: "checkbox", dataset: { clear: v } }), " " + label));
    const box = el("div", {}, s, el("div", { class: "clears-row" }, "also clears: ", ...clears));
    for (const input of box.querySelectorAll("select, input")) input.disabled = !enabled;
    if (!enabled) s.title = "no account or key on this decision";
    return box;
  }

  function queueRow(item) {
    const tr = el("tr", { dataset: { id: item.decision_id }, class: item.appealed ? "appealed" : "" });
    const reasons = el("td", {}, ...(item.reasons || []).map((r) => el("span", { class: "chip" }, r)));
    const appeal = item.appeal
      ? el("td", { class: "appeal" }, el("span", { class: "chip appealed" }, "appealed " + utc(item.appeal.ts)),
          el("div", { class: "appeal-text" }, item.appeal.message || "(no message)"))
      : el("td", {}, "–");
    tr.append(
      el("td", {}, utc(item.ts)),
      el("td", { class: item.action }, item.action),
      el("td", {}, el("code", {}, network(item.ip))),
      el("td", {}, item.country || "–"),
      el("td", {}, item.account_id ? el("code", {}, item.account_id) : "–"),
      reasons,
      appeal,
      el("td", {}, el("input", { type: "text", maxlength: 2000, placeholder: "note", "aria-label": "note" })),
      el("td", {}, tokenChoice(Boolean(item.account_id))),
      el("td", { class: "actions" },
        el("button", { type: "button", class: "confirm", dataset: { verdict: "confirm" } }, "Confirm"), " ",
        el("button", { type: "button", class: "overturn", dataset: { verdict: "overturn" } }, "Overturn")),
    );
    return tr;
  }

  function showQueueCount(total, shown) {
    $("queue-count").textContent = fmt(total);
    $("queue-empty").hidden = total > 0;
    const first = total ? state.queueOffset + 1 : 0;
    $("queue-page").textContent = total ? fmt(first) + "–" + fmt(state.queueOffset + shown) + " of " + fmt(total) : "";
    $("queue-prev").disabled = state.queueOffset === 0;
    $("queue-next").disabled = state.queueOffset + shown >= total;
  }

  async function refreshQueue(force) {
    const body = $("queue").tBodies[0];
    if (!force && body.contains(document.activeElement)) return; // do not pull the row from under a reviewer
    try {
      const filter = $("queue-filter").value;
      const params = new URLSearchParams({ state: "queued", limit: String(PAGE), offset: String(state.queueOffset) });
      if (filter) params.set("appealed", filter);
      const resp = await api("/v1/review?" + params.toString());
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      const items = await resp.json();
      const total = Number(resp.headers.get("x-total-count") || items.length);
      const ids = items.map((i) => i.decision_id).join(",");
      if (force || ids !== state.queueIds) {
        state.queueIds = ids;
        body.replaceChildren(...items.map(queueRow));
      }
      state.queueTotal = total;
      showQueueCount(total, items.length);
    } catch (err) {
      $("queue-status").textContent = "Could not load the queue (" + err.message + ").";
    }
  }

  async function review(button) {
    const tr = button.closest("tr");
    const id = tr.dataset.id;
    const verdict = button.dataset.verdict;
    const payload = { verdict, note: tr.querySelector("input[type=text]").value || "" };
    const days = tr.querySelector("select").value;
    if (verdict === "overturn" && days) {
      payload.issue_token_days = Number(days);
      payload.token_clears = Array.from(tr.querySelectorAll("input[data-clear]:checked"), (c) => c.dataset.clear);
    }
    for (const b of tr.querySelectorAll("button")) b.disabled = true;
    try {
      const resp = await api("/v1/review/" + encodeURIComponent(id), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(payload),
      });
      if (!resp.ok) {
        let detail = "HTTP " + resp.status;
        try {
          const doc = await resp.json();
          if (typeof doc.detail === "string") detail = doc.detail;
        } catch (_err) { /* not JSON */ }
        throw new Error(detail);
      }
      const out = await resp.json();
      const account = tr.children[4].textContent;
      tr.remove();
      state.queueIds = Array.from($("queue").tBodies[0].rows, (r) => r.dataset.id).join(",");
      state.queueTotal = Math.max(0, state.queueTotal - 1);
      showQueueCount(state.queueTotal, $("queue").tBodies[0].rows.length);
      $("queue-status").textContent =
        (verdict === "confirm" ? "Confirmed " : "Overturned ") + id.slice(0, 12) + ".";
      if (out.allow_token) {
        $("token-subject").textContent = "account " + account;
        $("allow-token").textContent = out.allow_token;
        $("token-box").hidden = false;
      }
    } catch (err) {
      for (const b of tr.querySelectorAll("button")) b.disabled = false;
      $("queue-status").textContent = "Could not record the verdict (" + err.message + ").";
    }
  }

  function hideToken() {
    $("allow-token").textContent = "";
    $("token-subject").textContent = "";
    $("token-box").hidden = true;
  }

  // -- wiring ---------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    $("queue").tBodies[0].addEventListener("click", (event) => {
      const button = event.target.closest("button[data-verdict]");
      if (button && !button.disabled) review(button);
    });
    $("token-dismiss").addEventListener("click", hideToken);
    $("token-copy").addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText($("allow-token").textContent);
        $("queue-status").textContent = "Token copied.";
      } catch (_err) {
        window.getSelection().selectAllChildren($("allow-token"));
      }
    });
    $("queue-prev").addEventListener("click", () => {
      state.queueOffset = Math.max(0, state.queueOffset - PAGE);
      refreshQueue(true);
    });
    $("queue-next").addEventListener("click", () => {
      state.queueOffset += PAGE;
      refreshQueue(true);
    });
    $("queue-filter").addEventListener("change", () => {
      state.queueOffset = 0;
      refreshQueue(true);
    });
    $("window").addEventListener("change", refreshStats);
    loadMap();
    refreshStats();
    refreshQueue(true);
    setInterval(refreshStats, STATS_EVERY_MS);
    setInterval(() => refreshQueue(false), QUEUE_EVERY_MS);
  });
})();
