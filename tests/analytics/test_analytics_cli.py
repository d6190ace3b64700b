"""``geowarden analyze``: one JSON document with --json, a summary otherwise, the report and the
findings files with --out, flags in the state store with --feed-state, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from analytics_world import LogWriter, infra_scenario, keys_scenario

from geowarden.analytics.findings import Finding, at_least
from geowarden.analytics.run import feed_back, flags_of
from geowarden.cli import main
from geowarden.state import MemoryStore
from geowarden.state.base import Flags


@pytest.fixture
def env(world_snapshot_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEOWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEOWARDEN_SNAPSHOT", str(world_snapshot_path))
    monkeypatch.delenv("GEOWARDEN_POLICY", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    path = LogWriter().jsonl(d / "logs.jsonl", (keys_scenario() + infra_scenario()).events)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("this line is broken\n")
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_json_document(env: Path, log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "analyze", str(log_file), "--json", "--out", str(env / "out"))
    assert code == 3, err  # the one broken line: reported with its line, the rest analysed
    doc = json.loads(out)  # exactly one JSON document
    assert set(doc) == {"findings", "problems", "stats"}
    subjects = {(f["kind"], f["subject"]) for f in doc["findings"]}
    assert {("key_shared", "k-resold"), ("key_shared", "k-relay"), ("infrastructure", "AS9009")} <= subjects
    for f in doc["findings"]:
        assert set(f) - {"keys"} == {"kind", "subject", "members", "score", "severity", "evidence"}
        assert f["severity"] in ("origin_hidden", "restricted_origin_seen")
        assert 0 <= f["score"] <= 1
    lines = len(log_file.read_text(encoding="utf-8").splitlines())
    assert doc["problems"]["skipped"] == 1
    assert doc["problems"]["rows"] == [{"file": str(log_file), "line": lines, "reason": "not JSON"}]
    st = doc["stats"]
    assert st["backend"] == "duckdb" and st["rows_read"] == lines and st["events"] == lines - 1
    assert {"load", "keys", "infra", "total"} <= set(st["cpu_seconds"])
    assert f"line {lines}: not JSON" in err  # the problem is also said on stderr
    written = json.loads((env / "out" / "findings.json").read_text())
    assert sorted((f["kind"], f["subject"]) for f in written) == sorted(subjects)
    table = pq.read_table(env / "out" / "findings.parquet")
    assert table.num_rows == len(doc["findings"])
    assert table["severity"].to_pylist() == [f["severity"] for f in written]


def test_summary_table_and_flags(env: Path, log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "analyze", str(log_file), "--quiet", "--feed-state", "memory")
    assert code == 3  # one malformed row (see test_json_document)
    assert "findings by kind" in out and "key_shared" in out and "k-resold" in out
    assert "flags put on keys and accounts" in out


def test_min_severity_keeps_what_is_at_or_above_it(log_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "analyze", str(log_file), "--json", "-q", "--min-severity", "restricted_origin_seen")
    assert code == 3, out
    doc = json.loads(out)
    assert doc["findings"] and {f["severity"] for f in doc["findings"]} == {"restricted_origin_seen"}
    assert doc["stats"]["findings_by_severity"]["origin_hidden"] == 0
    seen = Finding("account_cluster", "d", 0.9, {}, (), "restricted_origin_seen")
    hidden = Finding("account_cluster", "c", 0.9, {}, (), "origin_hidden")
    assert at_least([hidden, seen], "restricted_origin_seen") == [seen]
    assert at_least([hidden, seen], "origin_hidden") == [hidden, seen]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "missing.jsonl: no such file or directory"),
        (["LOG", "--backend", "oracle"], "unknown backend 'oracle'"),
        (["LOG", "--settings", "{not json"], "settings are not JSON"),
        (["LOG", "--accounts", "nope.csv"], "nope.csv: no such accounts file"),
        (["LOG", "--feed-state", "mysql://x"], "state store URL must be"),
        (["LOG", "--min-severity", "loud"], "unknown severity 'loud'"),
    ],
)
def test_bad_input_is_one_line(
    env: Path, log_file: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = cli(capsys, "analyze", *[str(log_file) if a == "LOG" else a for a in args])
    assert code != 0
    assert out == ""
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def finding(kind: str, subject: str, score: float, members: tuple[str, ...] = ()) -> Finding:
    return Finding(kind=kind, subject=subject, score=score, evidence={}, members=members)


def test_feed_back_puts_flags_the_live_path_reads() -> None:
    found = [
        finding("key_shared", "k1", 0.8),
        finding("account_cluster", "cluster-1", 0.7, ("a1", "a2")),
        finding("campaign", "campaign-1", 0.6, ("a2",)),
        finding("campaign", "campaign-2", 0.9, ("a2",)),
        finding("infrastructure", "AS9009", 0.9),
    ]
    names = [(n, c) for n, c, _ in flags_of(found)]
    assert ("k:k1", "ANALYTICS_KEY_SHARED") in names and ("a:a1", "ANALYTICS_ACCOUNT_CLUSTER") in names
    store = MemoryStore()
    put = feed_back(found, store, ttl=3600, now=1000.0)
    assert put == 4  # k1, a1 and a2 in the cluster, a2 in a campaign (the higher score kept)
    flags: list[Any] = store.apply([Flags("k:k1"), Flags("a:a2"), Flags("a:a9")], now=2000.0)
    assert flags[0] == {"ANALYTICS_KEY_SHARED": {"score": 0.8, "subject": "k1", "finding": "key_shared"}}
    assert flags[1]["ANALYTICS_CAMPAIGN"]["subject"] == "campaign-2"
    assert set(flags[1]) == {"ANALYTICS_ACCOUNT_CLUSTER", "ANALYTICS_CAMPAIGN"}
    assert flags[2] == {}
    assert store.apply([Flags("k:k1")], now=1000.0 + 3601)[0] == {}  # expired


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('{"keys": {"min_score": "high"}}', "keys.min_score must be a non-negative number"),
        ('{"keys": {"min_scor": 0.6}}', "keys has no threshold min_scor"),
        ('{"nope": {}}', "no analysis named 'nope'"),
        ('["keys"]', "settings must be a JSON object of objects"),
    ],
)
def test_bad_settings(
    env: Path, log_file: Path, capsys: pytest.CaptureFixture[str], settings: str, message: str
) -> None:
    code, _, err = cli(capsys, "analyze", str(log_file), "--quiet", "--settings", settings)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
