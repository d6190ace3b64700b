"""The audit log: every decision, append-only, with the review and appeal trail beside it.

One SQLAlchemy Core schema over two back ends: SQLite in WAL mode by default
(``$GEOWARDEN_HOME/audit.db``) and PostgreSQL at scale (``GEOWARDEN_AUDIT_URL=postgresql+psycopg://...``).
A decision is acknowledged only after its row is committed, so a process killed with ``kill -9``
loses no acknowledged decision. Writes are group-committed by one writer thread: many requests
share one transaction, each waits for the commit that holds its row.

Personal data never reaches the log as given: phone numbers, card BINs and email addresses are
stored as keyed hashes (HMAC-SHA256 with the audit key), enough to find every decision about
the same number without storing the number. Allowlist tokens are not stored at all.
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

from geowarden.errors import ConfigError
from geowarden.model import PERSONAL_FIELDS, Decision, Facts

metadata = sa.MetaData()

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("decision_id", sa.String(32), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("kind", sa.String(16), nullable=False),  # request | signup
    sa.Column("action", sa.String(16), nullable=False, index=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("policy_version", sa.String(80), nullable=False),
    sa.Column("elapsed_us", sa.Float, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Column("country", sa.String(8), index=True),
    sa.Column("asn", sa.BigInteger),
    sa.Column("account_id", sa.String(128), index=True),
    sa.Column("api_key_id", sa.String(128)),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list of codes
    sa.Column("rules", sa.Text, nullable=False),  # JSON list
    sa.Column("facts", sa.Text, nullable=False),  # JSON, personal fields as keyed hashes
    sa.Column("evidence", sa.Text, nullable=False),  # JSON list of Evidence dicts
    sa.Column("review", sa.String(16), nullable=False, index=True),  # none | queued | confirmed | overturned
)

review_events = sa.Table(
    "review_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("decision_id", sa.String(32), nullable=False, index=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),  # token name, or "end-user" for appeals
    sa.Column("event", sa.String(16), nullable=False),  # queued | appeal | confirm | overturn
    sa.Column("note", sa.Text, nullable=False),
)

REVIEW_STATES = ("none", "queued", "confirmed", "overturned")
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


@dataclass(frozen=True, slots=True)
class AuditRecord:
    decision_id: str
    ts: float
    kind: str
    action: str
    score: float
    policy_version: str
    elapsed_us: float
    ip: str | None
    country: str | None
    asn: int | None
    account_id: str | None
    api_key_id: str | None
    reasons: list[str]
    rules: list[str]
    facts: dict[str, Any]
    evidence: list[dict[str, Any]]
    review: str

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class AuditLog:
    """Append decisions and review events; query them back. Thread-safe."""

    def __init__(self, url: str, *, key: bytes, retention_days: float | None = None, batch_ms: float = 1.0) -> None:
        if len(key) < 16:
            raise ConfigError("the audit key must be at least 16 bytes")
        self.url = url
        self._key = key
        self.retention_days = retention_days
        self.engine = _engine(url)
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
        return f"AuditLog({_safe_url(self.url)!r})"

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
        return _record(row) if row is not None else None

    def recent(self, *, limit: int = 100, review: str | None = None, action: str | None = None) -> list[AuditRecord]:
        q = sa.select(decisions).order_by(decisions.c.ts.desc()).limit(limit)
        if review is not None:
            q = q.where(decisions.c.review == review)
        if action is not None:
            q = q.where(decisions.c.action == action)
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(q).mappings()]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar_one())

    def counts(self, *, since: float = 0.0, top_asns: int = 20, top_reasons: int = 5) -> dict[str, Any]:
        """Aggregates for the dashboard since ``since`` (epoch seconds).

        - ``by_action``: {action: n};
        - ``by_country``: {country (``??`` when unknown): {action: n}};
        - ``by_reason``: {code: n}, most frequent first;
        - ``series``: [{hour (epoch seconds), action, n}] by hour;
        - ``by_asn``: the ``top_asns`` networks with most decisions, most first:
          [{asn, org, n, by_action}]; ``org`` is the name found in the evidence of that network's
          latest decision (an evidence value ``{"asn": N, "org": "..."}``), or None;
        - ``reason_series``: [{hour, reason, n}] for the ``top_reasons`` most frequent codes.
        """

        def org_in(evidence: str, asn: int) -> str | None:
            try:
                items = json.loads(evidence)
            except ValueError:
                return None
            for e in items if isinstance(items, list) else ():
                value = e.get("value") if isinstance(e, dict) else None
                if (
                    isinstance(value, dict)
                    and isinstance(value.get("org"), str)
                    and value.get("asn", asn) in (asn, str(asn))
                ):
                    return str(value["org"])[:200]
            return None

        with self.engine.connect() as conn:
            by_action: dict[str, int] = dict(
                conn.execute(
                    sa.select(decisions.c.action, sa.func.count())
                    .where(decisions.c.ts >= since)
                    .group_by(decisions.c.action)
                ).all()
            )
            country_rows = conn.execute(
                sa.select(decisions.c.country, decisions.c.action, sa.func.count())
                .where(decisions.c.ts >= since)
                .group_by(decisions.c.country, decisions.c.action)
            ).all()
            reason_rows = conn.execute(
                sa.select(decisions.c.ts, decisions.c.reasons).where(decisions.c.ts >= since).limit(200_000)
            ).all()
            hour = sa.cast(decisions.c.ts, sa.BigInteger) // 3600  # integer division: floor for ts >= 0
            series = conn.execute(
                sa.select(hour, decisions.c.action, sa.func.count())
                .where(decisions.c.ts >= since)
                .group_by(hour, decisions.c.action)
                .order_by(hour)
            ).all()
            asn_rows = conn.execute(
                sa.select(decisions.c.asn, decisions.c.action, sa.func.count())
                .where(decisions.c.ts >= since, decisions.c.asn.is_not(None))
                .group_by(decisions.c.asn, decisions.c.action)
            ).all()
            by_asn_action: dict[int, dict[str, int]] = {}
            for asn, act, n in asn_rows:
                by_asn_action.setdefault(int(asn), {})[act] = int(n)
            top = sorted(by_asn_action, key=lambda a: (-sum(by_asn_action[a].values()), a))[: max(0, top_asns)]
            orgs: dict[int, str] = {}
            if top:
                latest = (
                    sa.select(decisions.c.asn, sa.func.max(decisions.c.ts).label("ts"))
                    .where(decisions.c.ts >= since, decisions.c.asn.in_(top))
                    .group_by(decisions.c.asn)
                    .subquery()
                )
                for asn, evidence in conn.execute(
                    sa.select(decisions.c.asn, decisions.c.evidence).join(
                        latest, sa.and_(decisions.c.asn == latest.c.asn, decisions.c.ts == latest.c.ts)
                    )
                ).all():
                    org = org_in(evidence, int(asn))
                    if org is not None:
                        orgs.setdefault(int(asn), org)
        by_country: dict[str, dict[str, int]] = {}
        for cc, act, n in country_rows:
            by_country.setdefault(cc or "??", {})[act] = int(n)
        by_reason: dict[str, int] = {}
        reason_hours: dict[tuple[int, str], int] = {}
        for ts, reasons in reason_rows:
            h = int(ts // 3600) * 3600
            for code in json.loads(reasons):
                by_reason[code] = by_reason.get(code, 0) + 1
                reason_hours[h, code] = reason_hours.get((h, code), 0) + 1
        ranked = dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])))
        keep = set(list(ranked)[: max(0, top_reasons)])
        return {
            "by_action": {k: int(v) for k, v in by_action.items()},
            "by_country": by_country,
            "by_reason": ranked,
            "series": [{"hour": int(h) * 3600, "action": a, "n": int(n)} for h, a, n in series],
            "by_asn": [
                {"asn": a, "org": orgs.get(a), "n": sum(by_asn_action[a].values()), "by_action": by_asn_action[a]}
                for a in top
            ],
            "reason_series": [
                {"hour": h, "reason": code, "n": n} for (h, code), n in sorted(reason_hours.items()) if code in keep
            ],
        }

    def prune(self, *, now: float | None = None) -> int:
        """Delete decisions (and their events) older than the retention period; returns how many."""
        if self.retention_days is None:
            return 0
        cutoff = (now if now is not None else time.time()) - self.retention_days * 86400
        with self.engine.begin() as conn:
            old = sa.select(decisions.c.decision_id).where(decisions.c.ts < cutoff)
            conn.execute(review_events.delete().where(review_events.c.decision_id.in_(old)))
            return int(conn.execute(decisions.delete().where(decisions.c.ts < cutoff)).rowcount or 0)

    def iter_all(self) -> Iterator[AuditRecord]:
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(decisions).order_by(decisions.c.ts)).mappings():
                yield _record(row)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        decision_id=row["decision_id"],
        ts=row["ts"],
        kind=row["kind"],
        action=row["action"],
        score=row["score"],
        policy_version=row["policy_version"],
        elapsed_us=row["elapsed_us"],
        ip=row["ip"],
        country=row["country"],
        asn=row["asn"],
        account_id=row["account_id"],
        api_key_id=row["api_key_id"],
        reasons=json.loads(row["reasons"]),
        rules=json.loads(row["rules"]),
        facts=json.loads(row["facts"]),
        evidence=json.loads(row["evidence"]),
        review=row["review"],
    )


def _engine(url: str) -> sa.Engine:
    try:
        if url.startswith("sqlite"):
            # timeout 0: a locked database raises at once and _commit retries quickly (see there).
            engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 0})

            @sa.event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                # NORMAL in WAL mode: a commit survives the process being killed (the WAL is in the OS
                # page cache); only a power failure may lose the last commits.
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.close()

            return engine
        return sa.create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigError(f"audit database {_safe_url(url)}: {exc}") from None


def _safe_url(url: str) -> str:
    """The URL without its password, for messages and reprs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid url>"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def open_default(home: Path, *, url: str | None = None, retention_days: float | None = None) -> AuditLog:
    """The audit log under ``home`` (SQLite) or at ``url``; the audit key lives beside it."""
    from geowarden.settings import secret_file  # noqa: PLC0415

    home.mkdir(parents=True, exist_ok=True)
    key = secret_file(home / "secrets" / "audit.key")
    return AuditLog(url or sqlite_url(home / "audit.db"), key=key, retention_days=retention_days)


__all__: Sequence[str] = ["REVIEW_STATES", "AuditLog", "AuditRecord", "open_default", "sqlite_url"]
