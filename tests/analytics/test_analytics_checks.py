"""Checks across rows (analytics/checks.py): duplicate request ids, clock skew and an accounts
table that disagrees with the logs are reported with file and line, and the rows are kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from analytics_world import T0

from geowarden.analytics.backends import DuckDBEngine
from geowarden.analytics.checks import SKEW_TOLERANCE_MS
from geowarden.analytics.load import load
from geowarden.intel.snapshot import Snapshot
from geowarden.policy import default_restricted

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
