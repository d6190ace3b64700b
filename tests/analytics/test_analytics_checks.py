"""Checks across rows (analytics/checks.py): duplicate request ids, clock skew and an accounts
table that disagrees with the logs are reported with file and line, and the rows are kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from analytics_world import T0

from geowarden.analytics.backends import DuckDBEngine
from geowarden.analytics.checks import SKEW_TOLERANCE_MS
from geowarden.analytics.findings import Finding
from geowarden.analytics.load import load
from geowarden.analytics.run import FINDINGS_VERSION, read_findings, write_findings
from geowarden.cli import main
from geowarden.intel.snapshot import Snapshot
from geowarden.policy import default_restricted
from geowarden.state import MemoryStore

MIN = 60_000


def row(rid: str, ts: int, account: str = "a1") -> dict[str, Any]:
    return {"ts": ts, "request_id": rid, "account_id": account, "api_key_id": "k1", "ip": "1.2.4.8"}


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_duplicates_and_skew_are_reported_and_kept(world_snapshot: Snapshot, tmp_path: Path) -> None:
    now = T0 + 60 * MIN
    logs = write(
        tmp_path / "e.jsonl",
        [
            row("r1", T0),
            row("r2", T0 + 10 * MIN),
            row("r1", T0 + 10 * MIN),  # line 3: duplicate of line 1
            row("r4", T0 + 10 * MIN - SKEW_TOLERANCE_MS + 1),  # line 4: a little out of order: fine
            row("r5", T0 + 10 * MIN - SKEW_TOLERANCE_MS - 1),  # line 5: beyond the tolerance
            row("r6", now + SKEW_TOLERANCE_MS + 1),  # line 6: in the future
            row("r7", now + SKEW_TOLERANCE_MS),  # line 7: at the tolerance: fine
        ],
    )
    loaded = load(DuckDBEngine(), [logs], world_snapshot, default_restricted(), now_ms=now)
    checks = loaded.problems.checks
    where = [(r["file"], r["line"], r["reason"]) for r in checks["rows"]]
    assert where == [
        (str(logs), 3, "duplicate request_id"),
        (str(logs), 5, "ts out of order"),
        (str(logs), 6, "ts in the future"),
    ]
    assert checks["found"] == 3 and checks["by_reason"]["ts in the future"] == 1
    assert checks["by_file"] == {str(logs): 3}
    assert loaded.problems.skipped == 0
    assert loaded.events.count().to_pyarrow().as_py() == 7  # the run goes on with every row
    assert loaded.problems.to_dict()["checks"] == checks


def test_out_of_order_is_per_file(world_snapshot: Snapshot, tmp_path: Path) -> None:
    a = write(tmp_path / "a.jsonl", [row("r1", T0 + 60 * MIN)])
    b = write(tmp_path / "b.jsonl", [row("r2", T0)])
    loaded = load(DuckDBEngine(), [a, b], world_snapshot, default_restricted(), now_ms=T0 + 120 * MIN)
    assert loaded.problems.checks["found"] == 0


def test_accounts_table_that_disagrees_with_the_logs(world_snapshot: Snapshot, tmp_path: Path) -> None:
    logs = write(tmp_path / "e.jsonl", [row("r1", T0, "a1"), row("r2", T0, "a2"), row("r3", T0, "a3")])
    acc = tmp_path / "accounts.jsonl"
    acc.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in [
                {"account_id": "a1", "created": T0, "payment_fingerprint": "p1"},
                {"account_id": "a2", "created": T0, "payment_fingerprint": "p2"},
                {"account_id": "a1", "created": T0, "payment_fingerprint": "p1"},  # same again: fine
                {"account_id": "a2", "created": T0, "payment_fingerprint": "p9"},  # line 4: conflicts
            ]
        ),
        encoding="utf-8",
    )
    loaded = load(DuckDBEngine(), [logs], world_snapshot, default_restricted(), accounts=acc, now_ms=T0)
    ev = [(r["line"], r["reason"]) for r in loaded.problems.checks["rows"]]
    assert ev == [(3, "account_id not in the accounts table")]
    assert loaded.account_problems is not None
    ac = [(r["file"], r["line"], r["reason"]) for r in loaded.account_problems.checks["rows"]]
    assert ac == [(str(acc), 4, "account fields conflict")]
    assert loaded.events.count().to_pyarrow().as_py() == 3


# -- the command line ---------------------------------------------------------------------------


@pytest.fixture
def env(world_snapshot_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GEOWARDEN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEOWARDEN_SNAPSHOT", str(world_snapshot_path))
    monkeypatch.delenv("GEOWARDEN_POLICY", raising=False)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_analyze_json_counts_the_checks(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = write(env / "e.jsonl", [row("r1", T0), row("r1", T0 + MIN)])
    code, out, err = cli(capsys, "analyze", str(logs), "--json")
    assert code == 0, err  # suspect rows are kept, not skipped
    problems = json.loads(out)["problems"]
    assert problems["skipped"] == 0  # what was there before is unchanged
    assert problems["checks"]["found"] == 1
    assert problems["checks"]["rows"] == [{"file": str(logs), "line": 2, "reason": "duplicate request_id"}]
    assert f"{logs} line 2: duplicate request_id (kept)" in err


def finding(**extra: Any) -> dict[str, Any]:
    return {"kind": "key_shared", "subject": "k1", "members": [], "score": 0.8, "severity": "origin_hidden",
            "evidence": {}, **extra}  # fmt: skip


def test_findings_file_round_trip_feeds_the_store(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_findings([Finding("key_shared", "k1", 0.8, {}), Finding("campaign", "c1", 0.7, {}, ("a1", "a2"))], env)
    found = read_findings(env / "findings.json")
    assert [(f.kind, f.subject, f.members) for f in found] == [
        ("key_shared", "k1", ()),
        ("campaign", "c1", ("a1", "a2")),
    ]
    meta = pq.read_schema(env / "findings.parquet").metadata
    assert meta[b"geowarden.findings_version"] == str(FINDINGS_VERSION).encode()
    code, out, err = cli(capsys, "analyze", "--findings", str(env / "findings.json"), "--feed-state", "memory")
    assert code == 0, err
    assert "3 flags put on keys and accounts from 2 findings" in out


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([finding()], "findings file of an older version (no findings_version)"),
        ([finding(findings_version=FINDINGS_VERSION), finding()], "an older version"),  # mixed: nothing applied
        ([finding(findings_version=99)], "findings file of version 99"),
        ([finding(findings_version=FINDINGS_VERSION, score="high")], "finding 1 is malformed"),
    ],
)
def test_older_findings_file_is_refused_whole(
    env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, doc: list[Any], message: str
) -> None:
    path = env / "findings.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    put: list[Any] = []
    monkeypatch.setattr(MemoryStore, "put_flag", lambda self, *a, **k: put.append(a))
    code, _, err = cli(capsys, "analyze", "--findings", str(path), "--feed-state", "memory")
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert put == []  # not half-applied


def test_findings_option_needs_a_store_and_no_logs(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_findings([], env)
    code, _, err = cli(capsys, "analyze", "--findings", str(env / "findings.json"))
    assert code == 2 and "--findings needs --feed-state" in err
    code, _, err = cli(capsys, "analyze", str(env), "--findings", str(env / "findings.json"), "--feed-state", "memory")
    assert code == 2 and "not both" in err
    code, _, err = cli(capsys, "analyze")
    assert code == 2 and "no log files given" in err
