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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geowarden.audit.chain import ChainKey, RawTx, append, decision_content, event_content, prune_segments
from geowarden.audit.daily import forget
from geowarden.audit.migrate import prepare
from geowarden.audit.schema import (
    AuditRecord,
    appeals,
    decisions,
    make_engine,
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


@dataclass(frozen=True, slots=True)
class _EventJob:
    """A review event for the writer: appended (and chained) in its transaction."""

    decision_id: str
    ts: float
    actor: str
    event: str
    note: str
    review: str | None

    def row(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "ts": self.ts,
            "actor": self.actor,
            "event": self.event,
            "note": self.note,
        }


Job = dict[str, Any] | _EventJob


def _resolve(futs: list[tuple[asyncio.Future[None], BaseException | None]]) -> None:
    for fut, error in futs:
        if fut.done():
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


class AuditLog:
    """Append decisions and review events, each chained (:mod:`.chain`); query them back.
    Thread-safe.

    ``key`` keys the hashes of personal data; ``signing_seed`` seeds the Ed25519 key that signs
    the chain (by default derived from ``key``; :func:`open_default` keeps its own file).
    ``chained=False`` writes without the chain: only for the benchmark's peer measurement, on a
    scratch database (``audit verify`` would report every row of it)."""

    def __init__(
        self,
        url: str,
        *,
        key: bytes,
        retention_days: float | None = None,
        batch_ms: float = 1.0,
        signing_seed: bytes | None = None,
        chained: bool = True,
    ) -> None:
        if len(key) < 16:
            raise ConfigError("the audit key must be at least 16 bytes")
        self.url = url
        self._key = key
        self.retention_days = retention_days
        self.chain_key = ChainKey(signing_seed if signing_seed is not None else key)
        self.chained = chained
        self.engine = make_engine(url)
        self._sqlite = self.engine.dialect.name == "sqlite"
        prepare(self.engine, self.chain_key)
        # Pending rows and who waits for them: a concurrent Future (threads) or an asyncio Future
        # with its loop. The writer drains everything pending in one transaction, then wakes each
        # event loop once for the whole batch (cheap; one wake-up per row is not).
        self._pending: collections.deque[tuple[Job, Waiter]] = collections.deque()
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
            "score": decision.score + 0.0,  # -0.0 as 0.0: SQLite stores no sign of zero, the hash would see one
            "policy_version": decision.policy_version,
            "elapsed_us": decision.elapsed_us + 0.0,
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

    def submit(
        self, decision: Decision, facts: Facts, *, kind: str = "request", ts: float | None = None
    ) -> Future[None]:
        """Queue a decision for the next group commit; the future completes once it is durable.
        ``ts`` (epoch seconds, default now) is for importing and tests."""
        fut: Future[None] = Future()
        self._enqueue(self.row_for(decision, facts, kind=kind, ts=ts), fut)
        return fut

    def submit_async(self, decision: Decision, facts: Facts, *, kind: str = "request") -> asyncio.Future[None]:
        """The same for a coroutine: ``await audit.submit_async(...)`` returns once committed."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._enqueue(self.row_for(decision, facts, kind=kind), (loop, fut))
        return fut

    def append(
        self, decision: Decision, facts: Facts, *, kind: str = "request", timeout: float = 10.0, ts: float | None = None
    ) -> None:
        """Append and wait until committed."""
        self.submit(decision, facts, kind=kind, ts=ts).result(timeout=timeout)

    def _enqueue(self, row: Job, waiter: Waiter) -> None:
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
            batch: list[tuple[Job, Waiter]] = []
            while self._pending and len(batch) < 5000:
                batch.append(self._pending.popleft())
            if self._pending:
                self._wake.set()
            if batch:
                self._commit(batch)

    def _commit(self, batch: list[tuple[Job, Waiter]]) -> None:
        error: BaseException | None = None
        item_errors: list[BaseException | None] = [None] * len(batch)
        deadline = time.monotonic() + 30.0
        while True:
            try:
                item_errors = self._write(batch)
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
                self.written += sum(1 for job, _ in batch if isinstance(job, dict))
            break
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[None], BaseException | None]]] = {}
        for (_, waiter), item_error in zip(batch, item_errors, strict=True):
            failure = error or item_error
            if isinstance(waiter, Future):
                if failure is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(failure)
            else:
                by_loop.setdefault(waiter[0], []).append((waiter[1], failure))
        for loop, futs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, futs)

    def _write(self, batch: list[tuple[Job, Waiter]]) -> list[BaseException | None]:
        """One transaction: the decisions, the review events, and their chain rows and heads.
        Returns, per item, the error that item alone met (an event for an unknown decision)."""
        tx = RawTx(self.engine)
        try:
            tx.executemany(
                _INSERT_DECISION, [tuple(r[c] for c in _DECISION_COLUMNS) for r, _ in batch if isinstance(r, dict)]
            )
            entries: list[tuple[str, str, str, float]] = []
            errors: list[BaseException | None] = []
            for job, _ in batch:
                errors.append(None)
                if isinstance(job, dict):
                    entries.append(("d", job["decision_id"], decision_content(job), job["ts"]))
                    if job["review"] != "queued":
                        continue
                    event = _EventJob(job["decision_id"], job["ts"], "policy", "queued", "", None)
                else:
                    if (
                        tx.execute("SELECT 1 FROM decisions WHERE decision_id = ?", (job.decision_id,)).fetchone()
                        is None
                    ):
                        errors[-1] = KeyError(job.decision_id)
                        continue
                    event = job
                row = event.row()
                eid = tx.insert_id(_INSERT_EVENT, [row[c] for c in _EVENT_COLUMNS])
                entries.append(("e", str(eid), event_content(row), event.ts))
                if event.review is not None:
                    tx.execute(
                        "UPDATE decisions SET review = ? WHERE decision_id = ?", (event.review, event.decision_id)
                    )
            if self.chained:
                append(tx, self.chain_key, entries)
            tx.commit()
        except BaseException:
            tx.rollback()
            raise
        finally:
            tx.close()
        return errors

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

    def add_event(
        self,
        decision_id: str,
        *,
        actor: str,
        event: str,
        note: str = "",
        review: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Append a review event (and set the decision's review state) through the writer, so it
        is chained like the decisions; KeyError when the decision is not in the log."""
        fut: Future[None] = Future()
        self._enqueue(_EventJob(decision_id, time.time(), actor, event, note[:2000], review), fut)
        fut.result(timeout=timeout)

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
        """Delete whole chain segments (UTC days) that ended before the retention period began,
        keeping their signed heads (:func:`.chain.prune_segments`); returns the number of
        decisions deleted."""
        if self.retention_days is None:
            return 0
        cutoff = (now if now is not None else time.time()) - self.retention_days * 86400
        deleted = prune_segments(self.engine, self.chain_key, cutoff)
        with self.engine.begin() as conn:  # appeals of decisions that are gone (not part of the chain)
            conn.execute(appeals.delete().where(appeals.c.decision_id.not_in(sa.select(decisions.c.decision_id))))
            forget(conn, cutoff)  # the daily summaries of those days, account and key ids included
        return deleted

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
    seed = signing_seed(home)
    try:
        return AuditLog(target, key=key, retention_days=retention_days, signing_seed=seed)
    except sa.exc.SQLAlchemyError as exc:  # a database that cannot be reached, or a URL it cannot use
        reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]
        raise ConfigError(f"the audit database {safe_url(target)} cannot be used: {reason}") from None


def signing_seed(home: Path) -> bytes:
    """The seed of the chain's Ed25519 signing key, kept under ``home`` (created the first time)."""
    from geowarden.settings import secret_file  # noqa: PLC0415

    return secret_file(home / "secrets" / "audit-signing.key")


__all__: Sequence[str] = ["AuditLog", "open_default"]
