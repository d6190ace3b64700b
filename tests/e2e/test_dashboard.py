"""The operator dashboard and the appeal page in a real headless Chromium, against the real server.

The server is the real `geowarden serve` process on loopback (started as tests/service/test_e2e.py
does, with the tiny snapshot and a temporary GEOWARDEN_HOME); the browser is Debian's Chromium,
driven by Playwright. Screenshots are written to tests/artifacts/.

Without /usr/bin/chromium or the playwright package these tests skip, except under CI (CI=true),
where either is a failure. Every browser wait is bounded (WAIT_MS).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from geowarden.audit.schema import sqlite_url
from geowarden.intel.snapshot import Snapshot
from helpers import missing
from service.test_e2e import Server, start, stop

pytestmark = pytest.mark.slow  # a real server and a real Chromium

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
WAIT_MS = 10_000
HTML_ACCOUNT = "<img src=x id=pwn>"  # an account id that is markup: it must show as text
HTML_ORG = "Google <b>LLC</b> & Co"  # an organisation name that is markup, from the audit evidence
BLOCK_FILL = "rgb(207, 34, 46)"  # STATE_FILL.block in dashboard.js
ALLOW_FILL = "rgb(45, 164, 78)"  # STATE_FILL.allow


try:
    from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect, sync_playwright
except ImportError:  # depends on the machine
    missing("the playwright package is not installed (pip install -e '.[dev]')")


@dataclass
class Seeded:
    server: Server
    blocked: list[dict[str, object]]
    queued: dict[str, str]  # account id -> decision id, for the decisions held for review
    problems: list[str] = field(default_factory=list)  # console errors, page errors, foreign requests


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file() or shutil.which(CHROMIUM) is None:
        missing(f"{CHROMIUM} not found (apt-get install -y chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True, timeout=30_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def seeded(tiny_snapshot: Snapshot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """A real server with 3 blocks (CN), 2 allows (US) and 2 decisions held for review (private 10.x)."""
    srv = start(tiny_snapshot, tmp_path_factory.mktemp("dash-home"))
    try:
        with srv.client() as c:
            blocked = [c.post("/v1/decide", json={"ip": "1.2.4.8", "account_id": f"cn-{i}"}).json() for i in range(3)]
            allowed = [c.post("/v1/decide", json={"ip": "8.8.8.8", "account_id": f"us-{i}"}).json() for i in range(2)]
            queued = {
                acct: c.post("/v1/decide", json={"ip": ip, "account_id": acct}).json()["decision_id"]
                for ip, acct in (("10.9.9.9", "acct-nat"), ("10.1.2.3", HTML_ACCOUNT))
            }
        assert [d["action"] for d in blocked + allowed] == ["block"] * 3 + ["allow"] * 2
        _give_asn(srv, [str(d["decision_id"]) for d in allowed])
        yield Seeded(srv, blocked, queued)
    finally:
        stop(srv)


def _give_asn(srv: Server, decision_ids: list[str]) -> None:
    """Give some decisions an organisation name with markup in it, to prove the page escapes it.

    The decision path records the network (``IP_NETWORK`` evidence and the ``asn`` column); the
    test rewrites the organisation of those decisions in the live audit database.
    """
    engine = sa.create_engine(sqlite_url(srv.home / "audit.db"), connect_args={"timeout": 30})
    try:
        decisions = sa.Table("decisions", sa.MetaData(), autoload_with=engine)
        with engine.begin() as conn:
            for did in decision_ids:
                ev = json.loads(
                    conn.execute(sa.select(decisions.c.evidence).where(decisions.c.decision_id == did)).scalar_one()
                )
                ev = [e for e in ev if e.get("code") != "IP_NETWORK"]
                ev.insert(0, {"signal": "ip", "code": "IP_NETWORK", "value": {"asn": 15169, "org": HTML_ORG}})
                conn.execute(
                    decisions.update().where(decisions.c.decision_id == did).values(asn=15169, evidence=json.dumps(ev))
                )
    finally:
        engine.dispose()


def _watch(page: Page, seeded: Seeded) -> Page:
    """Collect what must not happen: script errors, CSP violations, requests to another origin."""
    page.set_default_timeout(WAIT_MS)
    page.set_default_navigation_timeout(WAIT_MS)

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            seeded.problems.append(f"console: {msg.text} at {msg.location.get('url', '?')}")

    def on_request(req: Request) -> None:
        if not req.url.startswith((seeded.server.url + "/", "data:", "about:")):
            seeded.problems.append(f"foreign request: {req.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: seeded.problems.append(f"page error: {exc}"))
    page.on("request", on_request)
    return page


@pytest.fixture(scope="module")
def dashboard(browser: Browser, seeded: Seeded) -> Iterator[Page]:
    """A reviewer signed in with a review token, on the dashboard."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=seeded.server.url)
    page = _watch(context.new_page(), seeded)
    try:
        page.goto("/")
        assert page.url.endswith("/login")  # no cookie yet: to the sign-in page
        page.fill("#token", seeded.server.tokens["decide"])  # a token without the review scope
        page.click("#signin")
        expect(page.locator("[role=alert]")).to_contain_text("review scope")
        refused = [p for p in seeded.problems if "401 (Unauthorized)" in p]
        assert len(refused) == 1  # the browser logs the refused sign-in; nothing else is expected
        seeded.problems.remove(refused[0])
        page.fill("#token", seeded.server.tokens["review"])
        page.click("#signin")
        page.wait_for_url(seeded.server.url + "/")
        cookie = next(c for c in context.cookies() if c["name"] == "gw_token")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        yield page
    finally:
        context.close()


def test_counts_show_the_decisions(dashboard: Page, seeded: Seeded) -> None:
    expect(dashboard.locator("#count-block")).to_have_text("3")
    expect(dashboard.locator("#count-allow")).to_have_text("2")
    expect(dashboard.locator("#count-review")).to_have_text("2")
    expect(dashboard.locator("#count-challenge")).to_have_text("0")
    expect(dashboard.locator("#count-total")).to_have_text("7")
    expect(dashboard.locator("#updated")).to_contain_text("updated")
    # Live: a new decision shows up without reloading the page (refreshed every 5 s).
    with seeded.server.client() as c:
        extra = c.post("/v1/decide", json={"ip": "1.2.4.8", "account_id": "cn-live"}).json()
    seeded.blocked.append(extra)
    expect(dashboard.locator("#count-block")).to_have_text("4", timeout=WAIT_MS)
    expect(dashboard.locator("#count-total")).to_have_text("8")


def test_the_world_map_colours_countries_by_decision(dashboard: Page) -> None:
    cn = dashboard.locator("#map #cc-CN")
    expect(cn).to_have_attribute("data-state", "block")
    assert cn.evaluate("g => getComputedStyle(g).fill") == BLOCK_FILL
    assert cn.locator("path").count() > 0
    box = cn.bounding_box()
    assert box is not None and box["width"] > 20 and box["height"] > 10  # drawn, and big enough to see
    expect(cn.locator("title")).to_contain_text("4 blocked")
    us = dashboard.locator("#map #cc-US")
    expect(us).to_have_attribute("data-state", "allow")
    assert us.evaluate("g => getComputedStyle(g).fill") == ALLOW_FILL
    fr = dashboard.locator("#map #cc-FR")
    expect(fr).to_have_attribute("data-state", "none")
    assert fr.evaluate("g => getComputedStyle(g).fill") not in ("", "none", BLOCK_FILL, ALLOW_FILL)
    assert dashboard.locator("#map .country").count() > 200
    first = dashboard.locator("#countries tbody tr").first
    expect(first).to_have_attribute("data-cc", "CN")
    expect(first.locator("td").nth(1)).to_have_text("4")


def test_series_reasons_networks_and_clusters(dashboard: Page) -> None:
    dashboard.wait_for_selector("#series-actions svg rect.bar-block")
    assert dashboard.locator("#series-actions svg rect.bar-block").count() >= 1
    assert dashboard.locator("#series-actions svg rect.bar-allow").count() >= 1
    reasons = dashboard.locator("#reasons tbody tr")
    expect(reasons.first.locator("td").first).to_have_text("IP_COUNTRY_RESTRICTED")
    expect(reasons.first.locator("td").nth(1)).to_have_text("4")
    assert reasons.first.locator("svg.spark rect").count() >= 1
    asn = dashboard.locator("#asns tbody tr").first
    expect(asn.locator("td").first).to_have_text("AS15169")
    expect(asn.locator("td").nth(1)).to_have_text(HTML_ORG)  # the markup shows as text
    assert dashboard.locator("#asns b").count() == 0
    expect(dashboard.locator("#clusters-empty")).to_have_text("No analytics findings yet.")
    ARTIFACTS.mkdir(exist_ok=True)
    dashboard.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)


def test_a_reviewer_overturns_a_queued_decision(dashboard: Page, seeded: Seeded) -> None:
    rows = dashboard.locator("#queue tbody tr")
    expect(rows).to_have_count(2)
    expect(dashboard.locator("#queue-count")).to_have_text("2")
    # Data from the database is text, never markup; addresses show as their network only.
    html_row = dashboard.locator(f"#queue tr[data-id='{seeded.queued[HTML_ACCOUNT]}']")
    expect(html_row.locator("td").nth(4)).to_have_text(HTML_ACCOUNT)
    assert dashboard.locator("#pwn").count() == 0
    nat = dashboard.locator(f"#queue tr[data-id='{seeded.queued['acct-nat']}']")
    expect(nat.locator("td").nth(2)).to_have_text("10.9.9.0/24")
    assert "10.9.9.9" not in dashboard.content()

    nat.locator("input[type=text]").fill("corporate NAT")
    nat.locator("select").select_option("7")
    nat.locator("input[data-clear=restricted]").check()  # the reviewer chooses to clear a restricted country
    nat.locator("button[data-verdict=overturn]").click()
    expect(nat).to_have_count(0)
    expect(rows).to_have_count(1)
    expect(dashboard.locator("#token-box")).to_be_visible()
    token = dashboard.locator("#allow-token").inner_text()
    assert token.startswith("gwa1.")
    expect(dashboard.locator("#token-subject")).to_have_text("account acct-nat")
    ARTIFACTS.mkdir(exist_ok=True)
    dashboard.screenshot(path=str(ARTIFACTS / "dashboard-overturned.png"), full_page=True)
    dashboard.click("#token-dismiss")
    expect(dashboard.locator("#token-box")).to_be_hidden()
    assert token not in dashboard.content()  # shown once

    with seeded.server.client(scope="review") as c:
        queued = [q["decision_id"] for q in c.get("/v1/review").json()]
        overturned = [q["decision_id"] for q in c.get("/v1/review", params={"state": "overturned"}).json()]
    assert seeded.queued["acct-nat"] not in queued
    assert seeded.queued["acct-nat"] in overturned
    assert seeded.queued[HTML_ACCOUNT] in queued
    with seeded.server.client() as c:  # the token lets the account through from a restricted country
        d = c.post("/v1/decide", json={"ip": "1.2.4.8", "account_id": "acct-nat", "allow_token": token}).json()
    assert d["action"] == "allow"
    assert [r["code"] for r in d["reasons"]] == ["ALLOWLISTED"]

    html_row.locator("button[data-verdict=confirm]").click()
    expect(rows).to_have_count(0)
    expect(dashboard.locator("#queue-empty")).to_be_visible()
    with seeded.server.client(scope="review") as c:
        confirmed = [q["decision_id"] for q in c.get("/v1/review", params={"state": "confirmed"}).json()]
    assert seeded.queued[HTML_ACCOUNT] in confirmed


def test_an_appeal_is_sent_without_signing_in(browser: Browser, seeded: Seeded) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 700})  # no cookie: not signed in
    try:
        page = _watch(context.new_page(), seeded)
        blocked = seeded.blocked[0]
        path = str(blocked["appeal_url"]).removeprefix("https://ai.example")
        page.goto(seeded.server.url + path)
        expect(page.locator("h2")).to_have_text("Appeal a decision")
        expect(page.locator("main")).to_contain_text("You do not need to sign in")
        assert "IP_COUNTRY" not in page.content()  # no detection details for the end user
        page.fill("#message", "I live in Germany and was travelling.")
        page.click("#send")
        expect(page.locator("#done")).to_contain_text("Thank you", timeout=WAIT_MS)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "appeal.png"), full_page=True)
        page.goto(seeded.server.url + path[:-3] + "zzz")
        expect(page.locator("main")).to_contain_text("not valid")
        damaged = [p for p in seeded.problems if "404" in p and p.endswith("zzz")]
        assert len(damaged) == 1  # the browser logs the 404 of the damaged link; nothing else is expected
        seeded.problems.remove(damaged[0])
    finally:
        context.close()
    with seeded.server.client(scope="review") as c:
        assert blocked["decision_id"] in [q["decision_id"] for q in c.get("/v1/review").json()]


def test_appeals_come_first_marked_and_the_queue_pages(dashboard: Page, seeded: Seeded) -> None:
    """Issue 19 items 1 and 14: an appeal on an older decision is on the first page, marked and with
    its text; the badge counts the whole queue; the queue pages; the filter shows appeals only."""
    appealed = str(seeded.blocked[0]["decision_id"])  # appealed by the test above, before these
    with seeded.server.client() as c:
        for i in range(60):
            assert c.post("/v1/decide", json={"ip": "10.7.7.7", "account_id": f"held-{i}"}).json()["action"] == "review"
    dashboard.reload()
    rows = dashboard.locator("#queue tbody tr")
    expect(rows).to_have_count(50, timeout=WAIT_MS)
    expect(dashboard.locator("#queue-count")).to_have_text("61")
    first = rows.first
    expect(first).to_have_attribute("data-id", appealed)
    expect(first).to_have_class("appealed")
    expect(first.locator("td.appeal")).to_contain_text("I live in Germany and was travelling.")
    expect(dashboard.locator("#queue-page")).to_have_text("1\u201350 of 61")
    dashboard.click("#queue-next")
    expect(rows).to_have_count(11, timeout=WAIT_MS)
    expect(dashboard.locator("#queue-page")).to_have_text("51\u201361 of 61")
    expect(dashboard.locator("#queue-next")).to_be_disabled()
    dashboard.select_option("#queue-filter", "true")
    expect(rows).to_have_count(1, timeout=WAIT_MS)
    expect(rows.first).to_have_attribute("data-id", appealed)
    expect(dashboard.locator(".legend")).not_to_contain_text("allowed only")
    ARTIFACTS.mkdir(exist_ok=True)
    dashboard.screenshot(path=str(ARTIFACTS / "dashboard-appeals.png"), full_page=True)


def _server_stderr(srv: Server) -> str:
    """What the server wrote to stderr so far (the console sender's development SMS)."""
    assert srv.proc.stderr is not None
    os.set_blocking(srv.proc.stderr.fileno(), False)
    chunks = []
    for _ in range(50):
        got = srv.proc.stderr.read()
        if got:
            chunks.append(got.decode(errors="replace"))
            if "code is" in chunks[-1]:
                break
        time.sleep(0.1)
    return "".join(chunks)


def test_a_challenged_user_passes_with_a_code_without_signing_in(browser: Browser, seeded: Seeded) -> None:
    """Issue 19 item 16: the challenge page, end to end in a browser, with the console sender."""
    with seeded.server.client() as c:
        d = c.post("/v1/decide", json={"ip": "5.3.0.1", "account_id": "acct-step-up"}).json()
    assert d["action"] == "challenge"
    path = str(d["challenge_url"]).removeprefix("https://ai.example")
    context = browser.new_context(viewport={"width": 900, "height": 700})
    try:
        page = _watch(context.new_page(), seeded)
        page.goto(seeded.server.url + path)
        expect(page.locator("h2")).to_have_text("Verify your access")
        assert "HOSTING" not in page.content()  # no detection details for the end user
        _server_stderr(seeded.server)  # drop what came before
        page.fill("#phone", "+49 151 23456789")
        page.click("#send")
        expect(page.locator("#sent")).to_contain_text("+49 ***", timeout=WAIT_MS)
        code = re.findall(r"code is (\d{6})", _server_stderr(seeded.server))[-1]
        page.fill("#code", code)
        with page.expect_response(lambda r: r.url.endswith("/v1/challenge/verify")) as answer:
            page.click("#check")
        expect(page.locator("#result")).to_contain_text("you are verified", timeout=WAIT_MS)
        token = answer.value.json()["allow_token"]
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "challenge.png"), full_page=True)
    finally:
        context.close()
    with seeded.server.client() as c:
        after = c.post("/v1/decide", json={"ip": "5.3.0.1", "account_id": "acct-step-up", "allow_token": token}).json()
    assert after["action"] == "allow"
    assert [r["code"] for r in after["reasons"]] == ["ALLOWLISTED"]


def test_the_compliance_report_page_from_the_dashboard(dashboard: Page, seeded: Seeded) -> None:
    """Issue 20: the report's figures on the dashboard, for a chosen period, with the challenge the
    test above passed counted as completed (as the audit log's trail records it)."""
    engine = sa.create_engine(sqlite_url(seeded.server.home / "audit.db"), connect_args={"timeout": 30})
    try:
        with engine.connect() as conn:
            decisions = conn.execute(sa.text("SELECT count(*) FROM decisions")).scalar_one()
            passed = conn.execute(
                sa.text("SELECT count(DISTINCT decision_id) FROM review_events WHERE event = 'challenge'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert passed >= 1  # the challenge test ran first
    dashboard.goto("/")
    dashboard.click("#report-link")
    dashboard.wait_for_url(re.compile(r".*/report$"))
    expect(dashboard.locator("#summary")).to_contain_text(f"{decisions:,} decisions")
    dashboard.select_option("#by", "week")
    dashboard.click("#show")
    dashboard.wait_for_url(re.compile(r".*/report\?.*by=week.*"))
    head = dashboard.locator("h2:has-text('Outcomes') ~ table").first
    cols = [c.strip() for c in head.locator("tr").first.locator("th").all_inner_texts()]
    row = [c.strip() for c in head.locator("tr").last.locator("td").all_inner_texts()]
    assert dict(zip(cols, row, strict=True))["challenges completed"] == str(passed)
    text = dashboard.content()
    assert seeded.queued["acct-nat"] not in text and "acct-nat" not in text and "1.2.4.8" not in text
    ARTIFACTS.mkdir(exist_ok=True)
    dashboard.screenshot(path=str(ARTIFACTS / "dashboard-report.png"), full_page=True)
    dashboard.fill("#from", "2026-03-01")
    dashboard.fill("#to", "2026-02-01")
    with dashboard.expect_response(lambda r: "/report?" in r.url) as answer:
        dashboard.click("#show")
    assert answer.value.status == 400
    expect(dashboard.locator("#report-error")).to_have_text("to 2026-02-01 is before from 2026-03-01")
    refused = [p for p in seeded.problems if "400 (Bad Request)" in p]
    for p in refused:  # the browser logs the refused period; nothing else is expected
        seeded.problems.remove(p)
    dashboard.click("#back")
    dashboard.wait_for_url(seeded.server.url + "/")


def test_nothing_went_wrong_in_the_browser(browser: Browser, seeded: Seeded) -> None:
    """No script error, no CSP violation, and no request left the server's origin (no CDN)."""
    assert seeded.problems == []


def test_the_map_and_static_files_are_served(seeded: Seeded) -> None:
    with httpx.Client(base_url=seeded.server.url, timeout=10) as c:
        svg = c.get("/map/world.svg")
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.headers.get("content-encoding") == "gzip"  # httpx asks for gzip and decodes it
        assert 'id="cc-CN"' in svg.text and "<script" not in svg.text
        js = c.get("/static/dashboard.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert c.get("/static/%2e%2e/pages.py").status_code == 404  # nothing outside static/
