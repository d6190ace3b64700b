"""The compliance report on the dashboard (``GET /report``, ``GET /v1/report``): the report's own
figures for a chosen period, behind the review scope, a passed challenge counted, bad periods
refused in one line, and no personal data on the page. (In Chromium: tests/e2e/test_dashboard.py.)"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from geowarden.audit.review import IssuedToken
from geowarden.intel.snapshot import Snapshot
from geowarden.service.app import asgi_stack, build_service, create_app
from geowarden.service.auth import TokenStore
from geowarden.service.report_page import MAX_DAYS, period
from geowarden.settings import Settings
from service.test_limits import App


@pytest.fixture
def app(tiny_snapshot: Snapshot, tmp_path: Path) -> Iterator[App]:
    store = TokenStore(tmp_path / "tokens.json")
    tokens = {s: store.create([s]) for s in ("decide", "review", "admin")}
    service = build_service(Settings(home=tmp_path, snapshot=Path(tiny_snapshot.path)))
    a = App(asgi_stack(create_app(service), service), service, tokens)
    yield a
    service.audit.close()
    a.loop.close()


def _seed(app: App) -> None:
    """3 blocks (CN), 2 allows (US), 2 challenges of which one is passed."""
    ids = {}
    for ip, n in (("1.2.4.8", 3), ("8.8.8.8", 2), ("5.3.0.1", 2)):
        for i in range(n):
            d = app.request("POST", "/v1/decide", json={"ip": ip, "account_id": f"acct-{ip}-{i}"}).json()
            ids.setdefault(d["action"], []).append(d["decision_id"])
    assert {k: len(v) for k, v in ids.items()} == {"block": 3, "allow": 2, "challenge": 2}
    deadline = time.monotonic() + 10
    while app.service.audit.get(ids["challenge"][0]) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the audit writer appends behind the response
    now = time.time()
    token = IssuedToken("t0ken1d", "account:acct-5.3.0.1-0", now, now + 3600, ("restricted",))
    app.service.reviews.record_token(token, decision_id=ids["challenge"][0], actor="end-user")


def test_the_report_json_has_the_reports_figures_and_the_passed_challenge(app: App) -> None:
    _seed(app)
    today = datetime.now(UTC).date().isoformat()
    r = app.request("GET", f"/v1/report?from={today}&to={today}&by=week", scope="review")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["summary"] == {"decisions": 7, "attempts": 5, "accounts": 7, "keys": 0}
    [out] = doc["tables"]["outcomes"]
    assert (out["challenges"], out["challenges_completed"]) == (2, 1)
    assert doc["meta"]["by"] == "week" and doc["meta"]["snapshot"]["id"] == app.service.warden.intel.id
    # A period before the data: an empty report that says so.
    r = app.request("GET", "/v1/report?from=2020-01-01&to=2020-01-31", scope="review")
    assert r.status_code == 200 and r.json()["empty"] is True


def test_the_page_needs_the_review_scope_and_shows_the_figures(app: App) -> None:
    _seed(app)
    assert app.request("GET", "/report", scope=None).status_code == 303  # to /login
    assert app.request("GET", "/report", scope="decide").status_code == 303
    assert app.request("GET", "/v1/report", scope=None).status_code == 401
    assert app.request("GET", "/v1/report", scope="decide").status_code == 403
    r = app.request("GET", "/report", scope="review")
    assert r.status_code == 200, r.text
    csp = r.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp  # no script may run
    page = r.text
    assert "<script" not in page
    assert "<b>7</b> decisions, <b>5</b> attempts" in page
    assert "<th>challenges completed</th>" in page and "id=period" in page and "href=/" in page
    for personal in ("acct-", "1.2.4.8", "5.3.0.1", "8.8.8.8"):
        assert personal not in page
    dash = app.request("GET", "/", scope="review").text
    assert "href=/report" in dash


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "from: '2026-13-01' is not a date (YYYY-MM-DD)"),
        ("from=2026-03-01&to=2026-02-01", "to 2026-02-01 is before from 2026-03-01"),
        ("by=year", "by must be one of week, month, quarter, not 'year'"),
        ("from=2020-01-01&to=2026-01-01", f"a report on the dashboard covers at most {MAX_DAYS} days"),
        ("to=0001-01-01", "from 0001-01-01 to 0001-01-01 is outside the years 1970 to 9000"),
        ("from=9999-12-30&to=9999-12-31", "from 9999-12-30 to 9999-12-31 is outside the years 1970 to 9000"),
        ("from=1969-12-01&to=1969-12-31", "from 1969-12-01 to 1969-12-31 is outside the years 1970 to 9000"),
    ],
)
def test_a_bad_period_is_one_line(app: App, query: str, message: str) -> None:
    r = app.request("GET", f"/v1/report?{query}", scope="review")
    assert r.status_code == 400 and r.json()["detail"].startswith(message)
    page = app.request("GET", f"/report?{query}", scope="review")
    assert page.status_code == 400 and "id=report-error" in page.text and "id=period" in page.text


def test_the_default_period_is_the_last_90_days() -> None:
    first, last, start, end = period(None, None, "month", today=date(2026, 5, 10))
    assert (first, last) == (date(2026, 2, 10), date(2026, 5, 10))
    assert end - start == 90 * 86400
