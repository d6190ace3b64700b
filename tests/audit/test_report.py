"""``geowarden report`` over both audit back ends: figures checked against a log whose every count
is known, period-over-period intervals, the empty period, bad input, and (slow) the page and its
PDF in a real headless Chromium."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from chain_support import KEY

from geowarden.audit.store import AuditLog
from geowarden.model import Action, Decision, Evidence, Facts
from geowarden.reporting.figures import change, wilson

CHROMIUM = Path("/usr/bin/chromium")
Q1 = datetime(2026, 2, 10, tzinfo=UTC).timestamp()
Q2 = datetime(2026, 5, 10, tzinfo=UTC).timestamp()


def _decision(action: Action, codes: list[str], country: str, *, region: str | None = None,
              version: str = "default-aaaaaaaaaaaa") -> Decision:  # fmt: skip
    ev = [Evidence(signal="ip", code="IP_COUNTRY", value=country)]
    ev += [Evidence(signal="ip", code=c, value=region or country) for c in codes]
    ev.append(Evidence(signal="ip", code="IP_NETWORK", value={"asn": 4134 if country == "CN" else 16509, "org": "x"}))
    return Decision(action=action, score=1.0, reasons=tuple(ev[1:-1]), policy_version=version,
                    decision_id=uuid.uuid4().hex, elapsed_us=1.0, evidence=tuple(ev))  # fmt: skip


PLAN: list[tuple[float, Action, list[str], str, str | None, int]] = [
    # (when, action, reason codes, country, restricted region, how many)
    (Q1, Action.BLOCK, ["IP_COUNTRY_RESTRICTED"], "CN", None, 40),
    (Q1, Action.CHALLENGE, ["IP_VPN"], "US", None, 10),
    (Q1, Action.ALLOW, [], "DE", None, 30),
    (Q1, Action.REVIEW, ["IP_PRIVATE_OR_RESERVED"], "US", None, 4),
    (Q2, Action.BLOCK, ["IP_COUNTRY_RESTRICTED"], "CN", None, 60),
    (Q2, Action.BLOCK, ["IP_COUNTRY_RESTRICTED"], "UA", "UA-43", 3),
    (Q2, Action.CHALLENGE, ["IP_TOR", "TZ_RESTRICTED"], "DE", None, 5),
    (Q2, Action.ALLOW, [], "DE", None, 20),
]


def fill_log(url: str) -> list[str]:
    """The PLAN's decisions, two of the Q1 reviews overturned, one confirmed, one appealed; three
    Q1 challenges and one Q2 challenge passed (one of them twice: it counts once)."""
    log = AuditLog(url, key=KEY)
    reviews: list[str] = []
    challenged: dict[float, list[str]] = {Q1: [], Q2: []}
    try:
        n = 0
        for when, action, codes, cc, region, count in PLAN:
            for _ in range(count):
                d = _decision(action, codes, cc, region=region)
                ip = f"203.0.113.{n % 250}"
                log.submit(d, Facts(ip=ip, account_id=f"acct-{n % 9}", api_key_id=f"key-{n % 13}"), ts=when + n)
                n += 1
                if action is Action.REVIEW:
                    reviews.append(d.decision_id)
                if action is Action.CHALLENGE:
                    challenged[when].append(d.decision_id)
        log.append(_decision(Action.ALLOW, [], "DE", version="other-bbbbbbbbbbbb"), Facts(ip="1.1.1.1"), ts=Q2)
        log.add_event(reviews[0], actor="end-user", event="appeal", note="please", review="queued")
        log.add_event(reviews[0], actor="r", event="overturn", review="overturned")
        log.add_event(reviews[1], actor="r", event="overturn", review="overturned")
        log.add_event(reviews[2], actor="r", event="confirm", review="confirmed")
        for did in [*challenged[Q1][:3], challenged[Q1][0], challenged[Q2][0]]:
            log.add_event(did, actor="end-user", event="challenge", note="challenge passed")
    finally:
        log.close()
    return reviews


def _cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "geowarden", *args], env=base | env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def _csv(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_figures_of_a_known_log(url: str, tmp_path: Path) -> None:
    fill_log(url)
    out = tmp_path / "rep"
    p = _cli(tmp_path / "home", "report", "--from", "2026-01-01", "--to", "2026-06-30", "--by", "quarter",
             "--out", str(out), "--no-pdf", "--json", GEOWARDEN_AUDIT_URL=url)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["summary"] == {"decisions": 173, "attempts": 122, "accounts": 9, "keys": 13}
    doc = json.loads((out / "report.json").read_text())
    t = doc["tables"]
    assert [(r["period"], r["decisions"], r["attempts"]) for r in t["periods"]] == [
        ("2026-Q1", 84, 54), ("2026-Q2", 89, 68),
    ]  # fmt: skip
    juris = {(r["period"], r["jurisdiction"], r["action"]): r["n"] for r in t["jurisdictions"]}
    assert juris == {
        ("2026-Q1", "CN", "block"): 40, ("2026-Q1", "US", "challenge"): 10, ("2026-Q1", "US", "review"): 4,
        ("2026-Q2", "CN", "block"): 60, ("2026-Q2", "UA-43", "block"): 3, ("2026-Q2", "DE", "challenge"): 5,
    }  # fmt: skip
    tech = {(r["period"], r["technique"]): r["n"] for r in t["techniques"]}
    assert tech == {("2026-Q1", "vpn"): 10, ("2026-Q2", "tor"): 5,
                    ("2026-Q2", "restricted client behind foreign exit"): 5}  # fmt: skip
    cn = next(r for r in t["changes"] if r["subject"] == "CN")
    assert (cn["previous"], cn["current"], cn["small"]) == (40, 60, False)
    assert cn["change"] == pytest.approx(0.5)
    se = math.sqrt(1 / 40 + 1 / 60)
    assert cn["ci_low"] == pytest.approx(1.5 * math.exp(-1.96 * se) - 1)
    assert cn["ci_high"] == pytest.approx(1.5 * math.exp(1.96 * se) - 1)
    ua = next(r for r in t["changes"] if r["subject"] == "UA-43")
    assert (ua["previous"], ua["current"], ua["change"], ua["small"]) == (0, 3, None, True)
    [q1, q2] = t["outcomes"]
    assert (q1["challenges"], q1["reviews"], q1["overturned"], q1["confirmed"], q1["appeals"]) == (10, 4, 2, 1, 1)
    assert (q1["challenges_completed"], q2["challenges"], q2["challenges_completed"]) == (3, 5, 1)
    assert q1["false_positive_rate"] == pytest.approx(2 / 3) and q1["small"] is True
    assert q1["median_hours_to_appeal"] > 0 and q1["median_hours_appeal_to_verdict"] >= 0
    assert q2["reviews"] == 0 and q2["false_positive_rate"] is None
    assert [(r["policy_version"], r["decisions"]) for r in t["policies"]] == [
        ("default-aaaaaaaaaaaa", 172), ("other-bbbbbbbbbbbb", 1),
    ]  # fmt: skip
    assert (t["asns"][0]["asn"], t["asns"][0]["attempts"]) == (4134, 100)
    # The tables as CSV and Parquet, with the same rows.
    import pyarrow.parquet as pq

    for name in ("periods", "jurisdictions", "changes", "outcomes", "techniques", "asns", "actions", "policies"):
        assert len(_csv(out / f"{name}.csv")) == len(t[name])
        assert pq.read_table(out / f"{name}.parquet").num_rows == len(t[name])
    page = (out / "report.html").read_text()
    for personal in ("203.0.113.", "acct-", "key-", "1.1.1.1"):
        assert personal not in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org", "")


def test_a_policy_version_and_a_month_view(url: str, tmp_path: Path) -> None:
    fill_log(url)
    out = tmp_path / "rep"
    args = ("--from", "2026-05-01", "--to", "2026-05-31", "--by", "month", "--policy-version", "other-bbbbbbbbbbbb")
    p = _cli(tmp_path / "home", "report", *args, "--out", str(out), "--no-pdf", GEOWARDEN_AUDIT_URL=url)
    assert p.returncode == 0, p.stderr
    doc = json.loads((out / "report.json").read_text())
    assert doc["summary"]["decisions"] == 1 and doc["tables"]["periods"][0]["period"] == "2026-05"


def test_an_empty_period_gives_an_empty_report_that_says_so(url: str, tmp_path: Path) -> None:
    fill_log(url)
    out = tmp_path / "rep"
    p = _cli(tmp_path / "home", "report", "--from", "2025-01-01", "--to", "2025-03-31", "--by", "week",
             "--out", str(out), "--no-pdf", GEOWARDEN_AUDIT_URL=url)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("no audited decisions from 2025-01-01 to 2025-03-31")
    assert "No audited decisions in this period: nothing to report." in (out / "report.html").read_text()
    assert _csv(out / "periods.csv") == [] and (out / "periods.csv").read_text().startswith("period,decisions")
    assert json.loads((out / "report.json").read_text())["empty"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--from", "2026-01-01", "--to", "2026-02-01", "--by", "year"),
            "--by must be one of week, month, quarter, not 'year'",
        ),
        (("--from", "2026-13-01", "--to", "2026-02-01"), "--from: '2026-13-01' is not a date (YYYY-MM-DD)"),
        (("--from", "2026-03-01", "--to", "2026-02-01"), "--to 2026-02-01 is before --from 2026-03-01"),
    ],
)
def test_bad_report_arguments_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    p = _cli(tmp_path, "report", *args, "--out", str(tmp_path / "r"))
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"geowarden: error: {message}"]


def test_the_interval_helpers() -> None:
    assert change(100, 140)["change"] == pytest.approx(0.4)
    low, high = change(100, 140)["ci_low"], change(100, 140)["ci_high"]
    assert low < 0.4 < high and low > 0  # +40 % on 100 vs 140 is a real increase at 95 %
    assert change(10, 14)["small"] and change(10, 14)["ci_low"] < 0  # ... and on 10 vs 14 it is not
    assert change(5, 0)["change"] == -1.0
    p, lo, hi = wilson(2, 3)
    assert p == pytest.approx(2 / 3) and 0 < lo < p < hi < 1
    assert wilson(0, 0) == (None, None, None)


@pytest.mark.slow
def test_the_report_in_chromium(tmp_path: Path) -> None:
    """The page in a real Chromium: charts drawn, no request leaves the file, a PDF printed."""
    from helpers import require

    require(CHROMIUM.exists(), f"Chromium not found at {CHROMIUM}")
    playwright = pytest.importorskip("playwright.sync_api")
    from geowarden.audit.schema import sqlite_url

    url = sqlite_url(tmp_path / "audit.db")
    fill_log(url)
    out = tmp_path / "rep"
    p = _cli(tmp_path / "home", "report", "--from", "2026-01-01", "--to", "2026-06-30", "--by", "month",
             "--out", str(out), GEOWARDEN_AUDIT_URL=url)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    requests: list[str] = []
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.on("request", lambda r: requests.append(r.url))
        page.goto((out / "report.html").as_uri())
        assert page.locator("svg").count() == 3
        assert "173 decisions" in page.locator("#summary").inner_text().replace(",", "")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert [u for u in requests if not u.startswith("file://")] == []
    assert (tmp_path / "report.png").stat().st_size > 10_000
