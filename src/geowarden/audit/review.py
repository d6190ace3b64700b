"""The review state machine, appeals, and the allowlist tokens reviews issue.

A decision's ``review`` state::

    none ──(appeal)──► queued ◄──(policy: action review)
                          │
              confirm ────┴──── overturn (may issue an allowlist token)
                 ▼                  ▼
             confirmed          overturned      (final)
                 └──── reopen (admin) ────┘──► queued, revoking every token the review issued

Each step is one conditional ``UPDATE`` (``WHERE review = <the state it leaves>``) in one
transaction with its trail event and any token it issues, so two reviewers acting at once cannot
both win: the second is refused (:class:`ReviewConflictError`, HTTP 409) and nothing it would have
issued exists. An end user appeals a decision once (the ``appeals`` table's key); the queue lists
appealed decisions first and pages. :meth:`ReviewBook.is_revoked` is the revocation list the
Warden asks on every request that presents a genuine allowlist token.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from geowarden.audit.chain import ChainKey, chain_events
from geowarden.audit.schema import AuditRecord, allow_tokens, appeals, decisions, record_of, review_events
from geowarden.errors import GeowardenError

log = logging.getLogger("geowarden.audit")

T = TypeVar("T")
Verdict = Literal["confirm", "overturn", "reopen"]
#: The state each verdict leaves from, and the state it reaches.
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "confirm": (("queued",), "confirmed"),
    "overturn": (("queued",), "overturned"),
    "reopen": (("confirmed", "overturned"), "queued"),
}


class ReviewConflictError(GeowardenError):
    """The review is not in a state this verdict applies to (already decided, or still open)."""

    status = 409


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """An allowlist token a review issues: its terms, never the token itself."""

    token_id: str
    subject: str
    issued: float
    expires: float
    clears: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One decision in the review queue, with its appeal if there is one."""

    record: AuditRecord
    appeal_ts: float | None
    appeal_message: str | None


def _token_row(token: IssuedToken, decision_id: str | None) -> dict[str, Any]:
    """The ``allow_tokens`` row of a newly issued token (the token itself is never stored)."""
    return {
        "token_id": token.token_id,
        "decision_id": decision_id,
        "subject": token.subject,
        "issued": token.issued,
        "expires": token.expires,
        "clears": json.dumps(list(token.clears)),
        "revoked": None,
        "revoked_by": None,
    }


class ReviewBook:
    """Review, appeals and token revocation over the audit database (thread-safe)."""

    def __init__(self, engine: sa.Engine, chain_key: ChainKey | None = None) -> None:
        self.engine = engine
        self.chain_key = chain_key  # events are chained with the decisions when given (the service's log)

    def _events(self, conn: sa.Connection, rows: list[dict[str, Any]] | dict[str, Any]) -> None:
        """Insert review events in ``conn``'s transaction, chained when the log is."""
        rows = [rows] if isinstance(rows, dict) else rows
        if self.chain_key is not None:
            chain_events(conn, self.chain_key, rows)
        elif rows:
            conn.execute(review_events.insert(), rows)

    def review(
        self,
        decision_id: str,
        verdict: Verdict,
        *,
        actor: str,
        note: str = "",
        token: IssuedToken | None = None,
        now: float | None = None,
    ) -> str:
        """Apply ``verdict`` and return the new state; ``KeyError`` for an unknown decision,
        :class:`ReviewConflictError` when the decision is not in a state the verdict leaves from."""
        return _retrying(lambda: self._review(decision_id, verdict, actor, note, token, now))

    def _review(
        self, decision_id: str, verdict: Verdict, actor: str, note: str, token: IssuedToken | None, now: float | None
    ) -> str:
        sources, target = TRANSITIONS[verdict]
        now = now if now is not None else time.time()
        with self.engine.begin() as conn:
            done = conn.execute(
                decisions.update()
                .where(decisions.c.decision_id == decision_id, decisions.c.review.in_(sources))
                .values(review=target)
            ).rowcount
            if not done:
                found = conn.execute(
                    sa.select(decisions.c.review).where(decisions.c.decision_id == decision_id)
                ).scalar_one_or_none()
                if found is None:
                    raise KeyError(decision_id)
                hint = "an admin may reopen it" if found in ("confirmed", "overturned") else "it is not open"
                raise ReviewConflictError(f"the review of this decision is {found}: cannot {verdict} ({hint})")
            events = [{"decision_id": decision_id, "ts": now, "actor": actor, "event": verdict, "note": note[:2000]}]
            if verdict == "reopen":
                revoked = conn.execute(
                    allow_tokens.update()
                    .where(allow_tokens.c.decision_id == decision_id, allow_tokens.c.revoked.is_(None))
                    .values(revoked=now, revoked_by=actor[:128])
                ).rowcount
                if revoked:
                    events.append(
                        {
                            "decision_id": decision_id,
                            "ts": now,
                            "actor": actor,
                            "event": "revoke",
                            "note": f"{revoked} allowlist token(s) revoked",
                        }
                    )
            if token is not None:
                conn.execute(allow_tokens.insert(), _token_row(token, decision_id))
            self._events(conn, events)
        return target

    def record_token(self, token: IssuedToken, *, decision_id: str | None, actor: str) -> None:
        """Keep the terms of a token issued outside a review (a passed challenge), so it can be
        revoked like a review's; ``actor`` goes to the decision's trail."""

        def step() -> None:
            with self.engine.begin() as conn:
                conn.execute(allow_tokens.insert(), _token_row(token, decision_id))
                if decision_id is not None:
                    self._events(
                        conn,
                        {"decision_id": decision_id, "ts": token.issued, "actor": actor, "event": "challenge",
                         "note": f"challenge passed: allowlist token {token.token_id} for {token.subject}"},
                    )  # fmt: skip

        _retrying(step)

    def appeal(self, decision_id: str, message: str, *, now: float | None = None) -> bool:
        """Record an end user's appeal; False when this decision was already appealed. A decision
        nobody reviews yet (``none``) is opened (``queued``); a final one keeps its state (an
        admin may reopen it) and the appeal shows in the queue's ``appealed`` filter."""
        return _retrying(lambda: self._appeal(decision_id, message, now))

    def _appeal(self, decision_id: str, message: str, now: float | None) -> bool:
        now = now if now is not None else time.time()
        try:
            with self.engine.begin() as conn:
                conn.execute(appeals.insert(), {"decision_id": decision_id, "ts": now, "message": message[:2000]})
                self._events(
                    conn, {"decision_id": decision_id, "ts": now, "actor": "end-user", "event": "appeal", "note": ""}
                )
                conn.execute(
                    decisions.update()
                    .where(decisions.c.decision_id == decision_id, decisions.c.review == "none")
                    .values(review="queued")
                )
        except sa.exc.IntegrityError:
            return False
        return True

    def queue(
        self,
        *,
        state: str | None = "queued",
        appealed: bool | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[QueueEntry], int]:
        """One page of the queue (appealed decisions first, newest appeal first; then newest
        decision first) and how many match in all."""
        joined = decisions.outerjoin(appeals, appeals.c.decision_id == decisions.c.decision_id)
        where: list[sa.ColumnElement[bool]] = []
        if state is not None:
            where.append(decisions.c.review == state)
        if appealed is True:
            where.append(appeals.c.decision_id.is_not(None))
        elif appealed is False:
            where.append(appeals.c.decision_id.is_(None))
        q = (
            sa.select(decisions, appeals.c.ts.label("appeal_ts"), appeals.c.message.label("appeal_message"))
            .select_from(joined)
            .where(*where)
            .order_by(
                sa.case((appeals.c.decision_id.is_(None), 1), else_=0),
                appeals.c.ts.desc(),
                decisions.c.ts.desc(),
                decisions.c.decision_id,
            )
            .offset(offset)
            .limit(limit)
        )
        total_q = sa.select(sa.func.count()).select_from(joined).where(*where)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
            total = int(conn.execute(total_q).scalar_one())
        entries = [QueueEntry(record_of(r), r["appeal_ts"], r["appeal_message"]) for r in rows]
        return entries, total

    def is_revoked(self, token_id: str) -> bool:
        """Whether a review's token was revoked. A database that cannot answer counts as revoked
        (fail closed: the token is not honoured while the list cannot be read)."""
        try:
            with self.engine.connect() as conn:
                when = conn.execute(
                    sa.select(allow_tokens.c.revoked).where(allow_tokens.c.token_id == token_id)
                ).scalar_one_or_none()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("revocation list unreadable; allowlist token not honoured: %s", type(exc).__name__)
            return True
        return when is not None


def _retrying(step: Callable[[], T], *, seconds: float = 10.0) -> T:
    """Run one transaction, again while SQLite says another writer (the audit writer, another
    worker) holds the lock: the engine does not wait on a lock by itself (see ``schema.make_engine``)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return step()
        except sa.exc.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.002)
