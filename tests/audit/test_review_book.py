"""The review state machine, appeals and revocation (audit/review.py) over SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from audit.test_audit_store import audit, decision  # noqa: F401 - the fixture over both back ends
from geowarden.audit.review import IssuedToken, ReviewBook, ReviewConflictError
from geowarden.audit.store import AuditLog
from geowarden.audit.verify import verify_database
from geowarden.model import Action, Facts


def _queued(audit: AuditLog) -> str:  # noqa: F811 - the fixture's name
    d = decision(Action.REVIEW, "IP_PRIVATE_OR_RESERVED")
    audit.append(d, Facts(ip="10.0.0.1", account_id="a1"))
    return d.decision_id


def test_transitions(audit: AuditLog) -> None:  # noqa: F811
    book = ReviewBook(audit.engine, audit.chain_key)
    did = _queued(audit)
    token = IssuedToken("tok-1", "account:a1", time.time(), time.time() + 60, ("restricted",))
    assert book.review(did, "overturn", actor="r1", token=token) == "overturned"
    assert not book.is_revoked("tok-1")
    for verdict in ("confirm", "overturn"):
        with pytest.raises(ReviewConflictError, match="overturned"):
            book.review(did, verdict, actor="r2")  # type: ignore[arg-type]
    assert book.review(did, "reopen", actor="admin") == "queued"
    assert book.is_revoked("tok-1")
    with pytest.raises(ReviewConflictError):
        book.review(did, "reopen", actor="admin")
    assert book.review(did, "confirm", actor="r1") == "confirmed"
    with pytest.raises(KeyError):
        book.review("0" * 32, "confirm", actor="r1")
    _chain_holds(audit, events=5)  # queued, overturn, reopen, revoke, confirm


def _chain_holds(audit: AuditLog, *, events: int) -> None:  # noqa: F811
    """Every review event is chained in the transaction that wrote it: the log verifies."""
    report = verify_database(audit.engine, audit.chain_key.public)
    assert report.ok, report.problems
    assert report.found["e"] >= events


def test_one_appeal_per_decision_opens_an_unreviewed_one(audit: AuditLog) -> None:  # noqa: F811
    book = ReviewBook(audit.engine, audit.chain_key)
    d = decision()
    audit.append(d, Facts(ip="1.2.4.8"))
    assert book.appeal(d.decision_id, "please") is True
    assert book.appeal(d.decision_id, "please, again") is False
    rec = audit.get(d.decision_id)
    assert rec is not None and rec.review == "queued"
    entries, total = book.queue(appealed=True)
    assert total == 1 and entries[0].appeal_message == "please"
    _chain_holds(audit, events=1)


def test_concurrent_verdicts_one_wins(audit: AuditLog) -> None:  # noqa: F811
    book = ReviewBook(audit.engine, audit.chain_key)
    did = _queued(audit)
    out: list[str] = []
    gate = threading.Barrier(4)

    def go(verdict: str) -> None:
        gate.wait()
        try:
            out.append(book.review(did, verdict, actor=verdict))  # type: ignore[arg-type]
        except ReviewConflictError:
            out.append("conflict")

    threads = [threading.Thread(target=go, args=(v,)) for v in ("confirm", "overturn", "confirm", "overturn")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and out.count("conflict") == 3
    _chain_holds(audit, events=2)
