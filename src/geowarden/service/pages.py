"""Server-rendered pages: login, the end user's appeal page, and the operator dashboard.

No build step and nothing fetched from elsewhere: plain HTML, a little CSS, a little JavaScript
that reads ``/v1/stats`` and ``/v1/review`` with the session cookie.
"""

from __future__ import annotations

from html import escape

from geowarden.audit.store import AuditRecord

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1c2330}
header{background:#1c2330;color:#fff;padding:.8rem 1.2rem;display:flex;gap:1rem;align-items:baseline}
header h1{font-size:1.1rem;margin:0} header span{opacity:.7;font-size:.85rem}
main{padding:1rem 1.2rem;max-width:1200px} .card{background:#fff;border-radius:8px;padding:1rem;margin:0 0 1rem;
box-shadow:0 1px 2px #0001} table{border-collapse:collapse;width:100%} td,th{padding:.3rem .5rem;text-align:left;
border-bottom:1px solid #eee;font-size:.9rem} .allow{color:#1a7f37}.challenge{color:#9a6700}.review{color:#8250df}
.block{color:#cf222e}.limited{color:#0969da} form.inline{display:inline} button{cursor:pointer}
"""


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<meta name=viewport content='width=device-width,initial-scale=1'><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )


def login_page(error: str = "") -> str:
    err = f"<p class=block>{escape(error)}</p>" if error else ""
    return _page(
        "geowarden: sign in",
        "<header><h1>geowarden</h1></header><main><div class=card><h2>Sign in</h2>"
        f"{err}<form method=post action=/login><label>API token with the review scope "
        "<input type=password name=token id=token size=50 autocomplete=off></label> "
        "<button type=submit id=signin>Sign in</button></form></div></main>",
    )


def appeal_page(ref: str, rec: AuditRecord | None) -> str:
    if rec is None:
        return _page(
            "Appeal",
            "<main><div class=card><h2>Appeal</h2><p>This appeal link is not valid. Please use the link from "
            "the message you received.</p></div></main>",
        )
    return _page(
        "Appeal a decision",
        "<main><div class=card><h2>Appeal a decision</h2>"
        "<p>Access to the service was refused for a request on "
        f"<time>{escape(_when(rec.ts))}</time> (reference <code>{escape(rec.decision_id[:12])}</code>). "
        "If you believe this is a mistake, tell us why below. You do not need to sign in.</p>"
        f'<form id=appeal onsubmit="send(event)"><input type=hidden name=ref value="{escape(ref)}">'
        "<textarea name=message rows=5 cols=60 maxlength=2000 placeholder='Why this is a mistake'></textarea><br>"
        "<button type=submit>Send appeal</button></form><p id=done></p></div></main>"
        "<script>async function send(e){e.preventDefault();const f=e.target;"
        "const r=await fetch('/v1/appeals',{method:'POST',headers:{'content-type':'application/json'},"
        "body:JSON.stringify({ref:f.ref.value,message:f.message.value})});"
        "document.getElementById('done').textContent=r.ok?"
        "'Thank you. Your appeal has been received and will be reviewed.'"
        ":'Sorry, the appeal could not be sent.';}</script>",
    )


def dashboard_page(policy: str, snapshot: str) -> str:
    return _page(
        "geowarden dashboard",
        f"<header><h1>geowarden</h1><span>policy {escape(policy)}</span><span>intel {escape(snapshot)}</span></header>"
        "<main><div class=card><h2>Decisions (24 h)</h2><div id=counts>loading…</div></div>"
        "<div class=card><h2>Review queue</h2><table id=queue><thead><tr><th>when</th><th>address</th><th>country</th>"
        "<th>account</th><th>reasons</th><th></th></tr></thead><tbody></tbody></table></div></main>"
        "<script src=/static/dashboard.js></script>",
    )


def _when(ts: float) -> str:
    import time  # noqa: PLC0415

    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ts))
