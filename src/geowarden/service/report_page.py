"""The compliance report on the dashboard: ``GET /report`` (the page) and ``GET /v1/report`` (its
document as JSON), both behind a token with the review scope, like the rest of the dashboard.

The figures and the page are the report's own (``geowarden.reporting``: :func:`~geowarden.reporting
.figures.build` and :func:`~geowarden.reporting.render.render_html`), for a period chosen in a form
at the top of the page (``from``, ``to``, ``by``, ``policy_version`` as query parameters; by
default the last 90 days by month). Nothing is written to disk.

The page is the report's self-contained HTML: inline CSS and inline SVG charts, and no script.
It is served with its own Content-Security-Policy that allows inline styles and nothing else to
load or run (no script at all, no request to another host).
"""

import asyncio
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from geowarden.errors import AuthError, InputError
from geowarden.service.core import token_of

if TYPE_CHECKING:
    from geowarden.service.core import Service

#: The report page's policy: its inline styles and SVG, nothing else (no script, no other host).
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DEFAULT_DAYS = 90
MAX_DAYS = 3 * 366  # one request builds the report in the service's process: bound its range

_NAV_CSS = (
    "<style>nav.gw { display: flex; gap: 1em; align-items: end; flex-wrap: wrap; padding: .6em .8em; "
    "background: #f6f7f9; border: 1px solid #e4e7ec; border-radius: 6px; } nav.gw form { display: flex; "
    "gap: .8em; align-items: end; flex-wrap: wrap; } nav.gw label { font-size: .85em; "
    "display: flex; flex-direction: column; } nav.gw .err { color: #b71c1c; width: 100%; margin: 0; } "
    "@media print { nav.gw { display: none; } }</style>"
)


def period(
    date_from: str | None, date_to: str | None, by: str, *, today: date | None = None
) -> tuple[date, date, float, float]:
    """The first and last day asked for (defaults: the last :data:`DEFAULT_DAYS` days up to today,
    UTC) and the ``[start, end)`` timestamps; InputError (one line) on a bad date, range or ``by``."""
    from geowarden.reporting.figures import PERIODS  # noqa: PLC0415

    if by not in PERIODS:
        raise InputError(f"by must be one of {', '.join(PERIODS)}, not {by[:20]!r}", status=400)
    today = today or datetime.now(UTC).date()
    days: list[date] = []
    for name, text, default in (("to", date_to, today), ("from", date_from, None)):
        if not text:
            back = timedelta(days=DEFAULT_DAYS - 1)
            days.append(default or (days[0] - back if days[0] - date.min >= back else date.min))
            continue
        try:
            days.append(date.fromisoformat(text))
        except ValueError:
            raise InputError(f"{name}: {text[:20]!r} is not a date (YYYY-MM-DD)", status=400) from None
    last, first = days
    if last < first:
        raise InputError(f"to {last} is before from {first}", status=400)
    if (last - first).days >= MAX_DAYS:
        raise InputError(f"a report on the dashboard covers at most {MAX_DAYS} days (use geowarden report)", status=400)
    if first.year < 1970 or last.year > 9000:
        raise InputError(f"from {first} to {last} is outside the years 1970 to 9000", status=400)
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    end = (datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)).timestamp()
    return first, last, start, end


def _snapshot(service: "Service") -> dict[str, Any]:
    """The intel snapshot the service decides with: its id, build date and sources."""
    meta = service.warden.intel.meta
    keep = ("name", "title", "kind", "date", "licence", "url")
    return {
        "id": meta.get("id"),
        "built_at": meta.get("built_at"),
        "sources": [{k: s.get(k) for k in keep} for s in meta.get("sources", []) if isinstance(s, dict)],
    }


def build_doc(service: "Service", first: date, last: date, start: float, end: float, by: str,
              policy_version: str | None) -> dict[str, Any]:  # fmt: skip
    """The report document for the period, from the service's audit log (what ``report.json`` holds)."""
    from geowarden.reporting.figures import build  # noqa: PLC0415

    meta = {
        "from": first.isoformat(),
        "to": last.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "snapshot": _snapshot(service),
    }
    return build(service.audit.engine, start, end, by, policy_version=policy_version or None, meta=meta)


def controls(first: str, last: str, by: str, policy_version: str, error: str = "") -> str:
    """The period form above the report, with a link back to the dashboard."""
    from geowarden.reporting.figures import PERIODS  # noqa: PLC0415

    options = "".join(f"<option value={p}{' selected' if p == by else ''}>{p}</option>" for p in PERIODS)
    err = f"<p class=err id=report-error role=alert>{escape(error)}</p>" if error else ""
    return (
        f"{_NAV_CSS}<nav class=gw><a href=/ id=back>&larr; dashboard</a>"
        "<form method=get action=/report id=period>"
        f"<label>from <input type=date name=from id=from value='{escape(first)}'></label> "
        f"<label>to <input type=date name=to id=to value='{escape(last)}'></label> "
        f"<label>by <select name=by id=by>{options}</select></label> "
        f"<label>policy version <input name=policy_version id=policy_version size=24 value='{escape(policy_version)}' "
        "placeholder=all></label> <button type=submit id=show>Show</button></form>"
        f"{err}</nav>"
    )


def _error_page(message: str, first: str, last: str, by: str, policy_version: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>geowarden compliance report</title></head>"
        f"<body>{controls(first, last, by, policy_version, message)}</body></html>"
    )


def add_routes(app: FastAPI, service: "Service") -> None:
    """``GET /report`` and ``GET /v1/report``."""

    @app.get("/report", response_class=HTMLResponse, include_in_schema=False)
    async def report_page(
        request: Request,
        date_from: Annotated[str | None, Query(alias="from", max_length=20)] = None,
        date_to: Annotated[str | None, Query(alias="to", max_length=20)] = None,
        by: Annotated[str, Query(max_length=20)] = "month",
        policy_version: Annotated[str, Query(max_length=80)] = "",
    ) -> Response:
        if service.tokens.check(token_of(request.headers), "review") is None:
            return RedirectResponse("/login", status_code=303)
        from geowarden.reporting.render import render_html  # noqa: PLC0415

        headers = {"content-security-policy": CSP, "referrer-policy": "no-referrer", "cache-control": "no-store"}
        try:
            first, last, start, end = period(date_from, date_to, by)
        except InputError as exc:
            page = _error_page(exc.message, date_from or "", date_to or "", by, policy_version)
            return HTMLResponse(page, status_code=400, headers=headers)
        doc = await asyncio.to_thread(build_doc, service, first, last, start, end, by, policy_version)
        form = controls(first.isoformat(), last.isoformat(), by, policy_version)
        return HTMLResponse(render_html(doc, controls=form), headers=headers)

    # Not in /openapi.json, like the dashboard's pages: a range (``to`` before ``from``, too long)
    # is refused with 400 although each parameter is valid on its own, which a schema cannot say.
    @app.get("/v1/report", include_in_schema=False)
    async def report_json(
        request: Request,
        date_from: Annotated[str | None, Query(alias="from", max_length=20)] = None,
        date_to: Annotated[str | None, Query(alias="to", max_length=20)] = None,
        by: Annotated[str, Query(max_length=20)] = "month",
        policy_version: Annotated[str, Query(max_length=80)] = "",
    ) -> dict[str, Any]:
        """The compliance report's document (``report.json`` of ``geowarden report``) for a period:
        by default the last 90 days by month (scope review)."""
        token = token_of(request.headers)
        if service.tokens.check(token, "review") is None:
            if service.tokens.check(token, None) is not None:  # a genuine token, another scope
                raise AuthError("this token does not have the 'review' scope", status=403)
            raise AuthError("a token with scope 'review' is required")
        first, last, start, end = period(date_from, date_to, by)
        return await asyncio.to_thread(build_doc, service, first, last, start, end, by, policy_version)
