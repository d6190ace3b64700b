"""The tamper-evident chain, one contract suite over SQLite and a real PostgreSQL server: every
edit, deletion, reordering or insertion behind geowarden's back is named; pruning keeps the
chain verifiable; an older database is migrated and a newer or unknown one refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from chain_support import DAY, KEY, decision, filled

from geowarden.audit.chain import ChainKey
from geowarden.audit.schema import decisions, metadata, review_events, sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.audit.verify import VerifyReport, verify_database
from geowarden.model import Facts


def verify(log: AuditLog) -> VerifyReport:
    return verify_database(log.engine, log.chain_key.public)


def sql(log: AuditLog, text: str, **params: object) -> None:
    with log.engine.begin() as conn:
        conn.execute(sa.text(text), params)


def seq_of(log: AuditLog, ref: str) -> int:
    with log.engine.connect() as conn:
        return int(conn.execute(sa.text("select seq from audit_chain where ref = :r"), {"r": ref}).scalar_one())


@pytest.fixture
def log_ids(url: str) -> Iterator[tuple[AuditLog, list[str]]]:
    log, ids = filled(url)
    yield log, ids
    log.close()


def test_an_untouched_log_verifies(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    report = verify(log)
    assert report.ok, [p.line() for p in report.problems]
    assert report.segments == 3
    assert report.rows == len(ids) + len(ids) // 5 + 1  # decisions, queued events, the overturn
    assert report.head is not None and report.head["last_seq"] == report.rows


HASHED_EDITS = [
    ("action", "'allow'"), ("score", "0.1"), ("ts", "ts + 1"), ("ip", "'8.8.8.8'"), ("country", "'US'"),
    ("account_id", "'someone-else'"), ("reasons", "'[]'"), ("evidence", "'[]'"), ("policy_version", "'p-0'"),
]  # fmt: skip


@pytest.mark.parametrize(("column", "value"), HASHED_EDITS)
def test_an_edited_decision_is_named(log_ids: tuple[AuditLog, list[str]], column: str, value: str) -> None:
    log, ids = log_ids
    victim = ids[47]
    sql(log, f"update decisions set {column} = {value} where decision_id = :d", d=victim)
    report = verify(log)
    assert [(p.seq, p.ref) for p in report.problems] == [(seq_of(log, victim), victim)]
    assert report.problems[0].problem.startswith("edited")


def test_the_review_state_is_not_hashed_but_its_events_are(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    sql(log, "update decisions set review = 'confirmed' where decision_id = :d", d=ids[-5])
    assert verify(log).ok  # the state is derived; what changed it is the chain's business:
    sql(log, "update review_events set note = 'nothing to see' where event = 'overturn'")
    [problem] = verify(log).problems
    assert problem.kind == "e" and problem.problem.startswith("edited")


def test_a_deleted_decision_is_named(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    sql(log, "delete from decisions where decision_id = :d", d=ids[3])
    [problem] = verify(log).problems
    assert (problem.ref, problem.seq) == (ids[3], seq_of(log, ids[3]))
    assert problem.problem.startswith("deleted")


def test_a_deleted_row_and_its_chain_row_leave_a_gap(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    seq = seq_of(log, ids[50])
    sql(log, "delete from audit_chain where ref = :d", d=ids[50])
    sql(log, "delete from decisions where decision_id = :d", d=ids[50])
    messages = [p.line() for p in verify(log).problems]
    assert any(f"seq {seq}..{seq} missing from the chain" in m for m in messages), messages


def test_reordered_rows_are_named(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    a, b = seq_of(log, ids[42]), seq_of(log, ids[43])
    assert b == a + 1  # neither goes to review: adjacent in the chain
    sql(log, "update audit_chain set seq = -1 where seq = :a", a=a)
    sql(log, "update audit_chain set seq = :a where seq = :b", a=a, b=b)
    sql(log, "update audit_chain set seq = :b where seq = -1", b=b)
    problems = verify(log).problems
    assert problems, "a swap went unnoticed"
    first = problems[0]
    assert (first.seq, first.ref) == (a, ids[43])
    assert first.problem == f"reordered: it was chained after seq {b} (decision {ids[42]}), not after seq {a - 1}"


def test_rows_cut_off_at_the_end_are_noticed(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    last = ids[-1]
    sql(log, "delete from audit_chain where ref = :d", d=last)
    sql(log, "delete from decisions where decision_id = :d", d=last)
    messages = [p.line() for p in verify(log).problems]
    assert any("but the signed head says" in m for m in messages), messages


def test_a_recomputed_chain_does_not_match_the_signed_head(url: str) -> None:
    """Whoever edits a row and recomputes every hash after it still cannot sign the head."""
    log, _ = filled(url, days=1, per_day=10)
    try:
        forger = AuditLog.__new__(AuditLog)
        forger.chain_key = ChainKey(b"not the key" * 3)  # what a forger without the key can do
        sql(log, "update audit_heads set signature = :s", s="00" * 64)
        problems = verify(log).problems
        assert [p.problem.split(":")[0] for p in problems] == ["the segment's signed head does not verify"]
        # ...and a head signed by another key is named as such.
        from geowarden.audit.chain import head_payload

        with log.engine.connect() as conn:
            head = dict(conn.execute(sa.text("select * from audit_heads")).mappings().one())
        sig = forger.chain_key.sign(head_payload(head))
        sql(log, "update audit_heads set signature = :s, key_id = :k", s=sig, k=forger.chain_key.public.key_id)
        [problem] = verify(log).problems
        assert f"signed by key {forger.chain_key.public.key_id}" in problem.problem
    finally:
        log.close()


def test_a_deleted_segment_is_noticed(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, _ = log_ids
    with log.engine.connect() as conn:
        middle = conn.execute(sa.text("select segment from audit_heads order by segment")).scalars().all()[1]
    for table in ("decisions where decision_id in (select ref from audit_chain where segment = :s and kind = 'd')",
                  "audit_chain where segment = :s", "audit_checkpoints where segment = :s",
                  "audit_heads where segment = :s"):  # fmt: skip
        sql(log, f"delete from {table}", s=middle)
    messages = [p.line() for p in verify(log).problems]
    assert any("does not start from the previous segment's head" in m for m in messages), messages


def test_a_row_inserted_behind_geowardens_back_is_named(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, _ = log_ids
    row = log.row_for(decision(), Facts(ip="1.2.4.8"))
    with log.engine.begin() as conn:
        conn.execute(decisions.insert(), [row])
    [problem] = verify(log).problems
    assert (problem.ref, problem.problem) == (row["decision_id"], "not in the chain: inserted outside geowarden")


def test_pruning_keeps_the_chain_verifiable(log_ids: tuple[AuditLog, list[str]]) -> None:
    log, ids = log_ids
    log.retention_days = 1.0  # the oldest segment ended at least a day ago; the next one less
    assert log.prune() == 40
    assert log.get(ids[0]) is None and log.get(ids[40]) is not None
    report = verify(log)
    assert report.ok, [p.line() for p in report.problems]
    assert (report.segments, report.pruned_segments) == (3, 1)
    log.append(decision(), Facts(ip="1.2.4.8"))  # the chain goes on after a prune
    assert verify(log).ok


def test_concurrent_writers_on_one_database_keep_one_chain(url: str) -> None:
    """Two logs on one database (two worker processes): their commits serialise on the chain."""
    a, b = AuditLog(url, key=KEY), AuditLog(url, key=KEY)
    try:
        futures = [(a if i % 2 else b).submit(decision(), Facts(ip="1.2.4.8")) for i in range(400)]
        for f in futures:
            f.result(timeout=60)
        report = verify(a)
        assert report.ok and report.rows == 400, [p.line() for p in report.problems]
    finally:
        a.close()
        b.close()


# -- older and newer databases ------------------------------------------------------------------


def _v1_database(url: str) -> list[str]:
    """A database as geowarden wrote it before the chain: decisions and review events only."""
    engine = sa.create_engine(url)
    metadata.create_all(engine, tables=[decisions, review_events])
    scratch = AuditLog.__new__(AuditLog)
    scratch._key = KEY  # row_for needs only the key for the hashes of personal data
    rows = [scratch.row_for(decision(), Facts(ip="1.2.4.8"), ts=time.time() - d * DAY) for d in (3, 2, 1, 0)]
    with engine.begin() as conn:
        conn.execute(decisions.insert(), rows)
        conn.execute(review_events.insert(), [{"decision_id": rows[0]["decision_id"], "ts": time.time(),
                                               "actor": "r", "event": "confirm", "note": ""}])  # fmt: skip
    engine.dispose()
    return [r["decision_id"] for r in rows]


def test_a_version_1_database_is_migrated(url: str) -> None:
    ids = _v1_database(url)
    log = AuditLog(url, key=KEY)
    try:
        report = verify(log)
        assert report.ok and report.rows == 5 and report.segments == 4
        with log.engine.connect() as conn:
            found = dict(conn.execute(sa.text("select name, value from audit_meta")).all())
        assert found["schema_version"] == "2" and found["migrated_from"] == "1"
        assert all(log.get(d) is not None for d in ids)
        sql(log, "update decisions set action = 'allow' where decision_id = :d", d=ids[1])
        assert [p.ref for p in verify(log).problems] == [ids[1]]
    finally:
        log.close()


def test_a_version_2_database_gets_the_verify_index_on_open(url: str) -> None:
    log, _ = filled(url, days=2, per_day=10)
    log.close()
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        conn.execute(sa.text("drop index ix_audit_chain_segment_seq"))
    assert "ix_audit_chain_segment_seq" not in {i["name"] for i in sa.inspect(eng).get_indexes("audit_chain")}
    eng.dispose()
    log = AuditLog(url, key=KEY)
    try:
        assert "ix_audit_chain_segment_seq" in {i["name"] for i in sa.inspect(log.engine).get_indexes("audit_chain")}
        assert verify(log).ok and verify(log).rows == 20 + 4 + 1  # decisions, queued, the overturn
    finally:
        log.close()


def _cli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GEOWARDEN_")} | {"GEOWARDEN_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "geowarden", *args], env=base | env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def test_a_newer_or_unknown_database_is_refused_in_one_line(url: str, tmp_path: Path) -> None:
    log = AuditLog(url, key=KEY)
    sql(log, "update audit_meta set value = '9' where name = 'schema_version'")
    log.close()
    p = _cli(tmp_path, "audit", "verify", GEOWARDEN_AUDIT_URL=url)
    assert p.returncode == 2
    [line] = p.stderr.strip().splitlines()
    assert line.startswith("geowarden: error: audit database") and "schema version 9, written by a newer" in line


def test_a_foreign_decisions_table_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = sa.create_engine(sqlite_url(db))
    with engine.begin() as conn:
        conn.execute(sa.text("create table decisions (decision_id text primary key, ts real)"))
    engine.dispose()
    p = _cli(tmp_path / "home", "audit", "verify", GEOWARDEN_AUDIT_URL=sqlite_url(db))
    assert p.returncode == 2
    [line] = p.stderr.strip().splitlines()
    assert "older schema that cannot be migrated (table decisions lacks kind, action" in line


def test_audit_verify_command(log_ids: tuple[AuditLog, list[str]], tmp_path: Path) -> None:
    log, ids = log_ids
    home = tmp_path / "home"
    pub = log.chain_key.public.hex
    p = _cli(home, "audit", "verify", "--public-key", pub, "--json", "-q", GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["ok"] is True
    sql(log, "update decisions set score = 0 where decision_id = :d", d=ids[2])
    p = _cli(home, "audit", "verify", "--public-key", pub, "-q", GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 1
    assert p.stdout.splitlines()[0] == (
        f"segment {time.strftime('%Y-%m-%d', time.gmtime(time.time() - 2 * DAY))}, seq {seq_of(log, ids[2])}, "
        f"decision {ids[2]}: edited: its content no longer matches its hash"
    )
    # The key under GEOWARDEN_HOME is not the one that signed this log: every head is refused.
    p = _cli(home, "audit", "verify", "--json", "-q", GEOWARDEN_AUDIT_URL=log.url)
    assert p.returncode == 1 and "signed by key" in p.stdout
    k = _cli(home, "audit", "key", "--json")
    assert k.returncode == 0 and len(json.loads(k.stdout)["public_key"]) == 64


def test_segments_verified_in_worker_processes_report_the_same(
    log_ids: tuple[AuditLog, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import geowarden.audit.verify as verify_module

    log, ids = log_ids
    sql(log, "update decisions set action = 'allow' where decision_id = :d", d=ids[1])
    sql(log, "delete from decisions where decision_id = :d", d=ids[85])
    alone = verify_database(log.engine, log.chain_key.public, workers=1)
    monkeypatch.setattr(verify_module, "PARALLEL_ROWS", 0)
    apart = verify_database(log.engine, log.chain_key.public, workers=2)
    assert [p.line() for p in apart.problems] == [p.line() for p in alone.problems]
    assert [p.ref for p in alone.problems] == [ids[1], ids[85]]
    assert (apart.rows, apart.found) == (alone.rows, alone.found)


def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    p = _cli(tmp_path, "audit", "verify", GEOWARDEN_AUDIT_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert p.returncode == 2
    [line] = p.stderr.strip().splitlines()
    assert line.startswith(
        "geowarden: error: audit database postgresql+psycopg://nobody@127.0.0.1:1/none is unreachable"
    )


@pytest.mark.parametrize("piece_rows", [1, 3, 7, 20])
def test_a_segment_verified_in_pieces_reports_what_one_pass_does(
    log_ids: tuple[AuditLog, list[str]], monkeypatch: pytest.MonkeyPatch, piece_rows: int
) -> None:
    import geowarden.audit.verify as verify_module

    log, ids = log_ids
    a, b = seq_of(log, ids[42]), seq_of(log, ids[43])
    sql(log, "update audit_chain set seq = -1 where seq = :a", a=a)
    sql(log, "update audit_chain set seq = :a where seq = :b", a=a, b=b)
    sql(log, "update audit_chain set seq = :b where seq = -1", b=b)
    for gone in (ids[50], ids[51], ids[-1]):  # a gap of two rows, and the last row cut off
        sql(log, "delete from audit_chain where ref = :d", d=gone)
        sql(log, "delete from decisions where decision_id = :d", d=gone)
    sql(log, "update decisions set action = 'allow' where decision_id = :d", d=ids[6])
    sql(log, "delete from decisions where decision_id = :d", d=ids[85])
    whole = verify(log)
    assert len(whole.problems) >= 5
    monkeypatch.setattr(verify_module, "PIECE_ROWS", piece_rows)
    alone = verify_database(log.engine, log.chain_key.public, workers=1)
    monkeypatch.setattr(verify_module, "PARALLEL_ROWS", 0)
    apart = verify_database(log.engine, log.chain_key.public, workers=2)
    for pieces in (alone, apart):
        assert sorted(p.line() for p in pieces.problems) == sorted(p.line() for p in whole.problems)
        assert (pieces.rows, pieces.found) == (whole.rows, whole.found)
