"""The audit log: every decision, append-only, with the review and appeal trail beside it.

One SQLAlchemy Core schema (:mod:`.schema`) over two back ends: SQLite in WAL mode by default
(``$GEOWARDEN_HOME/audit.db``) and PostgreSQL at scale (``GEOWARDEN_AUDIT_URL=postgresql+psycopg://...``).
A decision is acknowledged only after its row is committed, so a process killed with ``kill -9``
loses no acknowledged decision. Writes are group-committed by one writer thread: many requests
share one transaction, each waits for the commit that holds its row.

Personal data never reaches the log as given: phone numbers, card BINs and email addresses are
stored as keyed hashes (HMAC-SHA256 with the audit key), enough to find every decision about
the same number without storing the number. Allowlist tokens are not stored at all.

The dashboard's aggregates are computed in :mod:`.stats`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geowarden.audit.schema import (
    AuditRecord,
    appeals,
    decisions,
    make_engine,
    metadata,
    record_of,
    review_events,
    safe_url,
    sqlite_url,
)
from geowarden.audit.stats import counts
from geowarden.errors import ConfigError
from geowarden.model import PERSONAL_FIELDS, Decision, Facts

_DECISION_COLUMNS = tuple(c.name for c in decisions.columns)
_EVENT_COLUMNS = ("decision_id", "ts", "actor", "event", "note")
# Built from the table definitions above, never from input.
_INSERT_DECISION = (
    f"INSERT INTO decisions ({', '.join(_DECISION_COLUMNS)}) VALUES ({', '.join('?' * len(_DECISION_COLUMNS))})"  # noqa: S608
)
_INSERT_EVENT = f"INSERT INTO review_events ({', '.join(_EVENT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608

#: Who waits for a row: a thread (concurrent Future) or a coroutine (its loop and asyncio Future).
Waiter = Future[None] | tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]


def _resolve(futs: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for fut in futs:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


class AuditLog:
    """Append decisions and review events; query them back. Thread-safe."""

    def __init__(self, url: str, *, key: bytes, retention_days: float | None = None, batch_ms: float = 1.0) -> None:
        if len(key) < 16:
            raise ConfigError("the audit key must be at least 16 bytes")
        self.url = url
        self._key = key
        self.retention_days = retention_days
        self.engine = make_engine(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        metadata.create_all(self.engine)
        # Pending rows and who waits for them: a concurrent Future (threads) or an asyncio Future
        # with its loop. The writer drains everything pending in one transaction, then wakes each
        # event loop once for the whole batch (cheap; one wake-up per row is not).
        self._pending: collections.deque[tuple[dict[str, Any], Waiter]] = collections.deque()
        self._wake = threading.Event()
        self._closing = False
        self._batch_s = batch_ms / 1000.0
        self._writer = threading.Thread(target=self._write_loop, name="geowarden-audit", daemon=True)
        self._writer.start()
        self.written = 0

    def __repr__(self) -> str:
        return f"AuditLog({safe_url(self.url)!r})"

    # -- writing -----------------------------------------------------------------------------

    def row_for(
        self, decision: Decision, facts: Facts, *, kind: str = "request", ts: float | None = None
    ) -> dict[str, Any]:
        ev_ip = next((e for e in decision.evidence if e.code == "IP_COUNTRY"), None)
        return {
            "decision_id": decision.decision_id,
            "ts": ts if ts is not None else time.time(),
            "kind": kind,
            "action": decision.action.value,
            "score": decision.score,
            "policy_version": decision.policy_version,
            "elapsed_us": decision.elapsed_us,
            "ip": facts.ip,
            "country": ev_ip.value if ev_ip is not None else None,
            "asn": next(
                (
                    int(e.value["asn"])
                    for e in decision.evidence
                    if e.code == "IP_NETWORK" and isinstance(e.value, dict)
                ),
                None,
            ),
            "account_id": facts.account_id,
            "api_key_id": facts.api_key_id,
            "reasons": json.dumps([e.code for e in decision.reasons]),
            "rules": json.dumps(list(decision.rules)),
            "facts": json.dumps(self.redact(facts), sort_keys=True),
            "evidence": json.dumps([e.to_dict() for e in decision.evidence], default=str),
            "review": "queued" if decision.action.value == "review" else "none",
        }

    def submit(self, decision: Decision, facts: Facts, *, kind: str = "request") -> Future[None]:
        """Queue a decision for the next group commit; the future completes once it is durable."""
        fut: Future[None] = Future()
        self._enqueue(self.row_for(decision, facts, kind=kind), fut)
        return fut

    def submit_async(self, decision: Decision, facts: Facts, *, kind: str = "request") -> asyncio.Future[None]:
        """The same for a coroutine: ``await audit.submit_async(...)`` returns once committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._enqueue(self.row_for(decision, facts, kind=kind), (loop, fut))
        return fut

    def append(self, decision: Decision, facts: Facts, *, kind: str = "request", timeout: float = 10.0) -> None:
        """Append and wait until committed."""
        self.submit(decision, facts, kind=kind).result(timeout=timeout)

    def _enqueue(self, row: dict[str, Any], waiter: Waiter) -> None:
        if self._closing:
            raise ConfigError("the audit log is closed")
        self._pending.append((row, waiter))
        if not self._wake.is_set():
            self._wake.set()

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            if self._closing and not self._pending:
                return
            time.sleep(self._batch_s)  # let a batch gather
            self._wake.clear()
            batch: list[tuple[dict[str, Any], Waiter]] = []
            while self._pending and len(batch) < 5000:
                batch.append(self._pending.popleft())
            if self._pending:
                self._wake.set()
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[tuple[dict[str, Any], Waiter]]) -> None:
        rows = [r for r, _ in batch]
        events = [
            {"decision_id": r["decision_id"], "ts": r["ts"], "actor": "policy", "event": "queued", "note": ""}
            for r in rows
            if r["review"] == "queued"
        ]
        error: BaseException | None = None
        deadline = time.monotonic() + 30.0
        while True:
            try:
                if self._sqlite:
                    self._insert_sqlite(rows, events)
                else:
                    with self.engine.begin() as conn:
                        conn.execute(decisions.insert(), rows)
                        if events:
                            conn.execute(review_events.insert(), events)
            except (sa.exc.OperationalError, sqlite3.OperationalError) as exc:
                # SQLite shared by several worker processes: another one holds the write lock.
                # Retry at once rather than through SQLite's busy handler, which sleeps for up to
                # 100 ms at a time and would put those sleeps into every waiting request.
                if "locked" in str(exc).lower() and time.monotonic() < deadline:
                    time.sleep(0.0005)
                    continue
                error = exc
            except Exception as exc:  # the waiting callers see the failure; the writer goes on
                error = exc
            else:
                self.written += len(rows)
            break
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, waiter in batch:
            if isinstance(waiter, Future):
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
            else:
                by_loop.setdefault(waiter[0], []).append(waiter[1])
        for loop, futs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, futs, error)

    def _insert_sqlite(self, rows: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
        """One transaction through the sqlite3 module directly: its executemany runs in C, while a
        Core insert of a few hundred rows would hold the GIL (and stall the event loop) for ms."""
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.executemany(_INSERT_DECISION, [tuple(r[c] for c in _DECISION_COLUMNS) for r in rows])
            if events:
                cur.executemany(_INSERT_EVENT, [tuple(e[c] for c in _EVENT_COLUMNS) for e in events])
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            raw.close()

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        self._writer.join(timeout=10)
        self.engine.dispose()

    # -- personal data -----------------------------------------------------------------------

    def keyed_hash(self, value: str) -> str:
        return "hmac:" + hmac.new(self._key, value.strip().lower().encode(), hashlib.sha256).hexdigest()[:32]

    def redact(self, facts: Facts) -> dict[str, Any]:
        out = facts.to_dict(redact=False)
        for name in PERSONAL_FIELDS:
            if name == "allow_token":
                if out.pop(name, None) is not None:
                    out["allow_token_presented"] = True
            elif out.get(name):
                out[name] = self.keyed_hash(str(out[name]))
        return out

    # -- review and appeals ------------------------------------------------------------------

    def add_event(self, decision_id: str, *, actor: str, event: str, note: str = "", review: str | None = None) -> None:
        with self.engine.begin() as conn:
            found = conn.execute(sa.select(decisions.c.review).where(decisions.c.decision_id == decision_id)).first()
            if found is None:
                raise KeyError(decision_id)
            conn.execute(
                review_events.insert(),
                {"decision_id": decision_id, "ts": time.time(), "actor": actor, "event": event, "note": note[:2000]},
            )
            if review is not None:
                conn.execute(decisions.update().where(decisions.c.decision_id == decision_id).values(review=review))

    def events(self, decision_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(review_events).where(review_events.c.decision_id == decision_id).order_by(review_events.c.id)
            ).mappings()
            return [dict(r) for r in rows]

    # -- reading -----------------------------------------------------------------------------

    def get(self, decision_id: str) -> AuditRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(decisions).where(decisions.c.decision_id == decision_id)).mappings().first()
        return record_of(row) if row is not None else None

    def recent(self, *, limit: int = 100, review: str | None = None, action: str | None = None) -> list[AuditRecord]:
        q = sa.select(decisions).order_by(decisions.c.ts.desc()).limit(limit)
        if review is not None:
            q = q.where(decisions.c.review == review)
        if action is not None:
            q = q.where(decisions.c.action == action)
        with self.engine.connect() as conn:
            return [record_of(r) for r in conn.execute(q).mappings()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    def counts(self, *, since: float = 0.0, top_asns: int = 20, top_reasons: int = 5) -> dict[str, Any]:
        """Aggregates for the dashboard since ``since`` (epoch seconds): :func:`.stats.counts`."""
        return counts(self.engine, since=since, top_asns=top_asns, top_reasons=top_reasons)

    def prune(self, *, now: float | None = None) -> int:
        """Delete decisions (and their events) older than the retention period; returns how many."""
        if self.retention_days is None:
            return 0
        cutoff = (now if now is not None else time.time()) - self.retention_days * 86400
        with self.engine.begin() as conn:
            old = sa.select(decisions.c.decision_id).where(decisions.c.ts < cutoff)
            conn.execute(review_events.delete().where(review_events.c.decision_id.in_(old)))
            conn.execute(appeals.delete().where(appeals.c.decision_id.in_(old)))
            return int(conn.execute(decisions.delete().where(decisions.c.ts < cutoff)).rowcount or 0)

    def iter_all(self) -> Iterator[AuditRecord]:
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(decisions).order_by(decisions.c.ts)).mappings():
                yield record_of(row)


def open_default(home: Path, *, url: str | None = None, retention_days: float | None = None) -> AuditLog:
    """The audit log under ``home`` (SQLite) or at ``url``; the audit key lives beside it. A
    database that cannot be used is a one-line ``ConfigError`` (exit 2), password hidden."""
    from geowarden.settings import secret_file  # noqa: PLC0415

    home.mkdir(parents=True, exist_ok=True)
    key = secret_file(home / "secrets" / "audit.key")
    target = url or sqlite_url(home / "audit.db")
    try:
        return AuditLog(target, key=key, retention_days=retention_days)
    except sa.exc.SQLAlchemyError as exc:  # a database that cannot be reached, or a URL it cannot use
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]
        raise ConfigError(f"the audit database {safe_url(target)} cannot be used: {reason}") from None


__all__: Sequence[str] = ["AuditLog", "open_default"]
