"""The audit schema and its two back ends: the tables, the record read back, the engine.

One SQLAlchemy Core schema (``decisions``; ``review_events`` beside it for the review and appeal
trail; ``appeals``, one per decision; ``allow_tokens``, the tokens reviews issued and their
revocation; the last two are created in an existing database on first start) over SQLite in WAL
mode by default and PostgreSQL at scale. :func:`make_engine` opens either from its URL;
:func:`safe_url` is that URL without its password, for messages.
Writing and querying the log is :class:`geowarden.audit.store.AuditLog`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from geowarden.errors import ConfigError

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

# One appeal per decision (the primary key deduplicates repeated appeals on one reference).
appeals = sa.Table(
    "appeals",
    metadata,
    sa.Column("decision_id", sa.String(32), primary_key=True),
    sa.Column("ts", sa.Float, nullable=False, index=True),
    sa.Column("message", sa.Text, nullable=False),
)

# Allowlist tokens issued by reviews (never the token itself: its id, subject and terms), and
# their revocation when the review is reopened.
allow_tokens = sa.Table(
    "allow_tokens",
    metadata,
    sa.Column("token_id", sa.String(32), primary_key=True),
    sa.Column("decision_id", sa.String(32), index=True),
    sa.Column("subject", sa.String(160), nullable=False),
    sa.Column("issued", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
    sa.Column("clears", sa.Text, nullable=False),  # JSON list
    sa.Column("revoked", sa.Float),  # when; NULL while valid
    sa.Column("revoked_by", sa.String(128)),
)

REVIEW_STATES = ("none", "queued", "confirmed", "overturned")


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


def record_of(row: Any) -> AuditRecord:
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


def make_engine(url: str) -> sa.Engine:
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
        raise ConfigError(f"audit database {safe_url(url)}: {exc}") from None


def safe_url(url: str) -> str:
    """The URL without its password, for messages and reprs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid url>"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"
