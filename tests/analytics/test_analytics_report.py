"""The analysis report: one self-contained page with charts, escaped evidence and no personal
data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from spark_support import accounts_table, duckdb_context, events_table
from test_analytics_graph import build_world

from geowarden.analytics import graph, report
from geowarden.analytics.findings import Finding
from geowarden.analytics.load import Problems
from geowarden.analytics.run import AnalysisResult
from geowarden.errors import ConfigError

NASTY = "<script>alert('x')</script>"

FINDINGS = [
    Finding(
        "account_cluster",
        "cluster-aaaaaaaaaaaa",
        0.91,
        {
            "size": 3,
            "links": {"payment": 2},
            "example_links": [["acct-1", "acct-2", "payment", "#0123456789ab"]],
            "note": NASTY,
        },
        ("acct-1", "acct-2", "acct-3"),
    ),
    Finding("account_cluster", "cluster-bbbbbbbbbbbb", 0.7, {"size": 12}, tuple(f"m{i}" for i in range(12))),
    Finding(
        "key_shared",
        "key-7",
        0.8,
        {"ips": ["203.0.113.77", "2001:db8:1:2:3:4:5:6"], "contact": "ops@example.com", "phone": "+86 138 0013 8000"},
    ),
    Finding("infrastructure", "AS64500", 0.6, {"org": "Example & Cloud", "accounts": 40, "events": 900}),
    Finding("infrastructure", "AS64501", 0.55, {"org": "Other Net", "accounts": 12, "events": 300}),
]

SUMMARY = {
    "volume_by_country_day": [
        {"day": f"2025-03-0{d}", "country": c, "events": n * d}
        for d in range(1, 8)
        for c, n in (("US", 100), ("DE", 40), ("CN", 5), ("SG", 7))
    ],
    "top_asns": [{"asn": 3320, "org": "Deutsche Telekom", "accounts": 50, "events": 2000}],
}
STATS = {
    "events": 1234,
    "accounts": 56,
    "keys": 78,
    "skipped": 2,
    "backend": "duckdb",
    "analyses": ["keys", "infra", "graph", "campaigns"],
    "seconds": {"total": 1.5},
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report")
    problems = Problems(rows_read=1236, skipped=2, by_reason={"ts: not a time": 1, "ip: not an address": 1})
    accounts = Problems(rows_read=10, skipped=1, by_reason={"created: not a time": 1})
    path = report.write(out, AnalysisResult(FINDINGS, problems, accounts, STATS, SUMMARY))
    return out, path.read_text(encoding="utf-8")


def test_page_is_self_contained_with_three_charts(written: tuple[Path, str]) -> None:
    out, page = written
    assert (out / "report.html").is_file()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<img src="data:image/png;base64,') == 3
    assert not re.search(r"""(src|href)=["'](?!data:)""", page)  # nothing loaded from elsewhere
    assert "<style>" in page


def test_summary_and_findings_are_shown(written: tuple[Path, str]) -> None:
    _, page = written
    for text in ("1234", "duckdb", "seconds.total", "cluster-aaaaaaaaaaaa", "key-7", "AS64500", "#0123456789ab"):
        assert text in page
    assert "keys, infra, graph, campaigns" in page
    assert "2 malformed rows skipped in the log" in page and "not an address" in page
    assert "1 malformed rows skipped in the accounts file" in page
    assert "… 2 more" in page  # 12 members, 10 shown


def test_values_are_escaped_and_personal_data_masked(written: tuple[Path, str]) -> None:
    _, page = written
    assert NASTY not in page and "&lt;script&gt;" in page
    assert "Example &amp; Cloud" in page and "Example & Cloud" not in page
    for raw in ("203.0.113.77", "2001:db8:1:2:3:4:5:6", "ops@example.com", "138 0013 8000"):
        assert raw not in page
    assert "203.0.113.0/24" in page and "[email]" in page and "[number]" in page and "[ipv6]" in page


def test_without_charts_the_page_has_tables(tmp_path: Path) -> None:
    page = report.render(FINDINGS, STATS, SUMMARY, charts=False)
    assert "Charts need matplotlib" in page
    assert "<img" not in page
    assert "2025-03-07" in page and "Deutsche Telekom" in page  # volume and ASN tables


def test_missing_summary_is_taken_from_findings(tmp_path: Path) -> None:
    page = report.write(tmp_path, findings=FINDINGS, stats={}, summary={}, charts=False).read_text()
    assert "No volume by country" in page
    asn_rows = re.findall(r"<td>(AS6450\d)</td>", page)
    assert asn_rows == ["AS64500", "AS64501"]  # most accounts first, from infrastructure findings
    assert "<td>3</td><td>1</td>" in page and "<td>12</td><td>1</td>" in page  # cluster sizes table


def test_nothing_found_still_reports(tmp_path: Path) -> None:
    path = report.write(tmp_path / "new" / "dir", findings=[])
    assert path == tmp_path / "new" / "dir" / "report.html"
    assert "Nothing flagged" in path.read_text()
    assert "Skipped rows" not in path.read_text()


def test_no_input_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        report.write(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="report directory"):
        report.write(tmp_path / "file" / "sub", findings=[])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3.4", "1.2.3.0/24"),
        ("net 1.2.3.0/24", "net 1.2.3.0/24"),
        ("2a00:1450:4001:80b::200e", "[ipv6]"),
        ("2a00:1450:4001::/48", "2a00:1450:4001::/48"),
        ("mail me: a.b+c@mail.example.org", "mail me: [email]"),
        ("+7 912 345-67-89", "[number]"),
        ("4111111111111111", "[number]"),
        ("cluster-0123456789ab", "cluster-0123456789ab"),
        ("AS64500", "AS64500"),
        ("2025-03-01T00:00:00Z", "2025-03-01T00:00:00Z"),
    ],
)
def test_scrub(text: str, expected: str) -> None:
    assert report.scrub(text) == expected


def test_report_of_a_real_graph_run(tmp_path: Path) -> None:
    w = build_world()
    found = graph.run(duckdb_context(events_table(w.events), accounts_table(w.accounts)))
    page = report.write(tmp_path, findings=found, stats={"events": len(w.events)}).read_text()
    for f in found:
        assert f.subject in page
    assert page.count("data:image/png;base64,") == 1  # cluster sizes only: no summary given
    assert "pay-netA" not in page and "python-httpx" not in page
