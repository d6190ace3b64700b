"""How ``audit verify`` reads a piece: the database's text of a decision hashes as the writer's
does, on SQLite and PostgreSQL, for awkward values; and on SQLite, where decisions are read in
rowid order beside the chain, decisions out of that order give the same report."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from chain_support import KEY, decision, filled

from geowarden.audit import pieces
from geowarden.audit.schema import sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.audit.verify import verify_database
from geowarden.model import Action, Decision, Evidence, Facts

AWKWARD = [
    'quote " and backslash \\ and slash /',
    "control \x01\x07\b\t\n\x0b\f\r\x1b\x1f and DEL \x7f",
    "non-ASCII: é ü 中文 Ж, emoji 😀, separators \u2028\u2029",
    "",
    '["looks like", {"json": 1}]',
]


def _awkward_decisions(log: AuditLog) -> list[str]:
    ids = []
    futures = []
    for i, awkward in enumerate(AWKWARD):
        nul = "\x01" in awkward and log.engine.dialect.name == "sqlite"  # PostgreSQL text cannot hold one
        text = "NUL \x00 " + awkward if nul else awkward
        ev = (Evidence(signal="ip", code="IP_COUNTRY", value=text[:8]),
              Evidence(signal="ip", code="IP_NETWORK", value={"asn": 4134 + i, "org": text}))  # fmt: skip
        d = Decision(action=Action.BLOCK, score=0.1 + 0.2, reasons=ev, policy_version=f"p-{text}",
                     decision_id=f"id-{i}-{text[:3]}", elapsed_us=1 / 3, rules=(text,), evidence=ev)  # fmt: skip
        facts = Facts(ip=None if i % 2 else f"10.0.0.{i}", account_id=None if i == 1 else text, api_key_id=text)
        futures.append(log.submit(d, facts, ts=1_780_000_000.123456789 + i / 7))
        ids.append(d.decision_id)
    # score -0.0 is stored as 0.0 (SQLite keeps no sign of zero; the hash must not see one)
    bare = Decision(action=Action.ALLOW, score=-0.0, reasons=(), policy_version="p", decision_id="bare",
                    elapsed_us=1e-7)  # fmt: skip
    futures.append(log.submit(bare, Facts(), ts=1_780_000_000.0))
    ids.append("bare")
    for f in futures:
        f.result(timeout=30)
    return ids


def _rows(log: AuditLog) -> Iterator[tuple[str, str, str | None]]:
    """(ref, content_hash, sha256 of the database's text) of every chained decision."""
    with log.engine.connect() as conn:
        heads = conn.execute(sa.text("SELECT segment FROM audit_heads")).scalars().all()
        for seg in heads:
            with pieces.chunks(conn, seg, -(2**62), 2**62) as chunks:
                for chain, decs in chunks:
                    for (_seq, kind, ref, content_hash, _prev, _stored), dec in zip(chain, decs, strict=True):
                        if kind == "d":
                            got = None if dec is None else hashlib.sha256(pieces.text(*dec).encode()).hexdigest()
                            yield ref, content_hash, got


def test_the_databases_text_of_awkward_decisions_hashes_as_the_writers(url: str) -> None:
    log = AuditLog(url, key=KEY)
    try:
        ids = _awkward_decisions(log)
        seen = {ref: (want, got) for ref, want, got in _rows(log)}
        assert set(seen) == set(ids)
        assert {ref for ref, (want, got) in seen.items() if want != got} == set()  # no fallback needed
        assert verify_database(log.engine, log.chain_key.public).ok
    finally:
        log.close()


def test_a_text_the_database_writes_otherwise_is_hashed_again_not_called_edited(url: str) -> None:
    # json writes an infinite float "Infinity", repr "inf": the shortcut misses, the exact hash holds
    log = AuditLog(url, key=KEY)
    try:
        d = decision()
        log.submit(dataclasses.replace(d, elapsed_us=float("inf")), Facts(ip="1.2.4.8")).result(timeout=30)
        [(ref, want, got)] = list(_rows(log))
        assert ref == d.decision_id and got != want
        report = verify_database(log.engine, log.chain_key.public)
        assert report.ok, [p.line() for p in report.problems]
        with log.engine.begin() as conn:
            conn.execute(sa.text("UPDATE decisions SET score = 0.5"))
        [problem] = verify_database(log.engine, log.chain_key.public).problems
        assert (problem.ref, problem.problem) == (d.decision_id, "edited: its content no longer matches its hash")
    finally:
        log.close()


def _shuffle(log: AuditLog, extra: str = "") -> None:
    """Rewrite the decisions table in another physical order (SQLite: new rowids)."""
    with log.engine.begin() as conn:
        conn.execute(sa.text("CREATE TEMP TABLE shuffled AS SELECT * FROM decisions ORDER BY " + (extra or "random()")))
        conn.execute(sa.text("DELETE FROM decisions"))
        conn.execute(sa.text("INSERT INTO decisions SELECT * FROM shuffled"))
        conn.execute(sa.text("DROP TABLE shuffled"))


@pytest.mark.parametrize("order", ["random()", "ts DESC", "substr(decision_id, 5) || decision_id"])
def test_decisions_out_of_chain_order_give_the_same_report(url: str, order: str) -> None:
    log, ids = filled(url)
    try:
        with log.engine.begin() as conn:
            conn.execute(sa.text("UPDATE decisions SET action = 'allow' WHERE decision_id = :d"), {"d": ids[7]})
            conn.execute(sa.text("DELETE FROM decisions WHERE decision_id = :d"), {"d": ids[60]})
        before = verify_database(log.engine, log.chain_key.public, workers=1)
        assert [p.ref for p in before.problems] == [ids[7], ids[60]]
        _shuffle(log, order)
        after = verify_database(log.engine, log.chain_key.public, workers=1)
        assert [p.line() for p in after.problems] == [p.line() for p in before.problems]
        assert (after.rows, after.found) == (before.rows, before.found)
    finally:
        log.close()


def test_a_decision_deleted_and_inserted_again_at_the_end_still_verifies(url: str) -> None:
    log, ids = filled(url, days=1, per_day=300)
    try:
        with log.engine.begin() as conn:
            for i in (0, 5, 150):  # the first one of the piece, one near it, one far from both
                row = conn.execute(sa.text("SELECT * FROM decisions WHERE decision_id = :d"), {"d": ids[i]}).one()
                conn.execute(sa.text("DELETE FROM decisions WHERE decision_id = :d"), {"d": ids[i]})
                names = ", ".join(row._fields)
                marks = ", ".join(":" + c for c in row._fields)
                conn.execute(sa.text(f"INSERT INTO decisions ({names}) VALUES ({marks})"), dict(row._mapping))
        report = verify_database(log.engine, log.chain_key.public, workers=1)
        assert report.ok, [p.line() for p in report.problems]
        assert report.found["d"] == len(ids)
    finally:
        log.close()


@pytest.mark.parametrize("edit", ["kind = 5", "score = 'high'", "policy_version = X'00ff'", "asn = 'x'"])
def test_a_column_given_another_type_is_named_edited(tmp_path: Path, edit: str) -> None:
    # SQLite only: a PostgreSQL column keeps its type (and refuses these values)
    log, ids = filled(sqlite_url(tmp_path / "audit.db"), days=1, per_day=10)
    try:
        with log.engine.begin() as conn:
            conn.execute(sa.text(f"UPDATE decisions SET {edit} WHERE decision_id = :d"), {"d": ids[3]})
        [problem] = verify_database(log.engine, log.chain_key.public).problems
        assert (problem.ref, problem.problem) == (ids[3], "edited: its content no longer matches its hash")
    finally:
        log.close()
