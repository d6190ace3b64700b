"""Daily summaries of the audit log, kept beside it so that a report reads summaries, not rows.

For each closed UTC day (ended at least :data:`GRACE` seconds ago) three tables hold:

- ``audit_daily``: the decisions counted per distinct (action, country, ASN, reason codes, policy
  version, restricted-region hint), with the first and last time: what the report groups by,
  except the review state, which changes after the day (the report reads reviewed decisions
  from the log itself, through the index on ``review``);
- ``audit_daily_ids``: the distinct account and key ids of the day per policy version, as 64-bit
  hashes (:func:`id_hash`; not the ids themselves), so unique accounts and keys per week, month
  or quarter are counted without the rows (two distinct ids share a hash with a probability of
  about n²/2⁶⁴: 5 in a million for 10 M distinct ids);
- ``audit_days``: which days are summarised, and over how many decisions.

A day's summary is made the first time a report covers it (:func:`refresh`) and kept. It is
checked against the log at every report: a day whose count of decisions (counted through the
index on ``ts``) differs from the count it was summarised over — rows imported into it, or
deleted — is summarised again. Retention deletes the summaries of the days it prunes
(:func:`forget`), so no account or key id outlives the rows it came from. The tables are derived
data: deleting them loses nothing but time.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sqlalchemy as sa

from geowarden.audit.schema import metadata

GRACE = 3600.0  # a day is closed this long after its end: rows stamped in it have committed
DAY = 86400

daily = sa.Table(
    "audit_daily",
    metadata,
    sa.Column("day", sa.BigInteger, nullable=False, index=True),  # days since 1970-01-01 (UTC)
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("country", sa.String(8)),
    sa.Column("asn", sa.BigInteger),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("policy_version", sa.String(80), nullable=False),
    sa.Column("region_hint", sa.Text),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Column("first_ts", sa.Float, nullable=False),
    sa.Column("last_ts", sa.Float, nullable=False),
)

daily_ids = sa.Table(
    "audit_daily_ids",
    metadata,
    sa.Column("day", sa.BigInteger, nullable=False),
    sa.Column("policy_version", sa.String(80), nullable=False),
    sa.Column("kind", sa.String(1), nullable=False),  # a: account id, k: API key id
    sa.Column("hid", sa.BigInteger, nullable=False),  # id_hash() of the id
    sa.Index("ix_audit_daily_ids_kind_day", "kind", "day"),
)

days = sa.Table(
    "audit_days",
    metadata,
    sa.Column("day", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("n", sa.BigInteger, nullable=False),  # the decisions it was summarised over
    sa.Column("made_at", sa.Float, nullable=False),
)

DAILY_TABLES = (daily, daily_ids, days)


def day_expr(pg: bool) -> str:
    """SQL for the UTC day (days since 1970) of a row's ``ts``."""
    return "CAST(floor(ts / 86400) AS BIGINT)" if pg else "CAST(ts / 86400 AS INTEGER)"


def hint_expr(pg: bool) -> str:
    """SQL for an 80-character excerpt of the evidence from its ``IP_COUNTRY_RESTRICTED`` entry on
    (it names the restricted region), or NULL. No LIKE: a % would clash with psycopg's placeholders."""
    pos = "strpos" if pg else "instr"
    find = f"{pos}(evidence, '\"IP_COUNTRY_RESTRICTED\"')"
    return f"CASE WHEN {pos}(reasons, 'IP_COUNTRY_RESTRICTED') > 0 THEN substr(evidence, {find}, 80) END"


GROUP_KEYS = ("action", "country", "asn", "reasons", "policy_version")


def grouped_sql(pg: bool, where: str) -> str:
    """Decisions matching ``where`` counted per day and :data:`GROUP_KEYS` and hint: the columns
    of ``audit_daily``."""
    day, keys, hint = day_expr(pg), ", ".join(GROUP_KEYS), hint_expr(pg)
    return (
        f"SELECT {day}, {keys}, {hint}, count(*), min(ts), max(ts) FROM decisions "  # noqa: S608 - own names
        f"WHERE {where} GROUP BY {day}, {keys}, {hint}"
    )


def ids_sql(pg: bool, where: str) -> str:
    """The distinct (day, policy version, kind, id) of the decisions matching ``where``."""
    day = day_expr(pg)
    return (
        f"SELECT DISTINCT {day}, policy_version, 'a', account_id FROM decisions "  # noqa: S608 - own names
        f"WHERE {where} AND account_id IS NOT NULL UNION "
        f"SELECT DISTINCT {day}, policy_version, 'k', api_key_id FROM decisions "
        f"WHERE {where} AND api_key_id IS NOT NULL"
    )


def id_hash(value: str) -> int:
    """A signed 64-bit hash of an account or key id (BLAKE2b): what ``audit_daily_ids`` keeps."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big", signed=True)


def closed_days(start: float, end: float, now: float) -> list[int]:
    """The whole UTC days inside ``[start, end)`` that are closed at ``now``."""
    first = int(-(-start // DAY))
    last = min(int(end // DAY), int((now - GRACE) // DAY))  # exclusive
    return list(range(first, last))


def _sql(conn: sa.Connection, text: str) -> str:
    return text if conn.dialect.name == "sqlite" else text.replace("?", "%s")


def refresh(engine: sa.Engine, wanted: Sequence[int], *, now: float | None = None, workers: int | None = None) -> int:
    """Summarise every day of ``wanted`` whose summary is missing or no longer matches the log's
    count of decisions on that day; returns how many were (re)made. Each day is read outside any
    write lock and written in a short transaction of its own (a report that stops keeps the days
    it finished); two reports at once write a day once. Days are summarised in ``workers``
    threads (default: one per CPU), each on its own connection: the grouping runs inside the
    database, which lets go of Python's lock while it works."""
    workers = workers if workers is not None else os.cpu_count() or 1
    if not wanted:
        return 0
    lo, hi = min(wanted), max(wanted) + 1
    want = set(wanted)
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        cur = raw.cursor()
        if engine.dialect.name != "sqlite":
            _lean(cur)
        counts = {}
        for d in sorted(want):  # one count per day: a walk of the ts index, cheaper than grouping by day
            cur.execute(_sql(conn, "SELECT count(*) FROM decisions WHERE ts >= ? AND ts < ?"), (d * DAY * 1.0,
                        (d + 1) * DAY * 1.0))  # fmt: skip
            counts[d] = int(cur.fetchone()[0])
        cur.execute(_sql(conn, "SELECT day, n FROM audit_days WHERE day >= ? AND day < ?"), (lo, hi))
        kept = {int(d): int(n) for d, n in cur.fetchall()}
        cur.close()
    stale = [d for d in sorted(want) if kept.get(d) != counts.get(d, 0)]
    at = time.time() if now is None else now
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(stale)))) as pool:  # SQL runs outside the GIL
        list(pool.map(lambda d: _summarise(engine, d, at), stale))
    return len(stale)


def _lean(cur: Any) -> None:
    """PostgreSQL, for the rest of this transaction: no parallel workers and no JIT compilation.
    One thread per CPU already runs the per-day queries, each over a day's rows: the server's
    workers would only compete with them for the same cores, and compiling costs more than it
    saves on queries this short (20 days of a 10 M-row log: 3.4 s instead of 5.8 s)."""
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    cur.execute("SET LOCAL jit = off")


def _summarise(engine: sa.Engine, day: int, now: float) -> None:
    pg = engine.dialect.name != "sqlite"
    where = "ts >= ? AND ts < ?"
    span = (day * DAY * 1.0, (day + 1) * DAY * 1.0)
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        cur = raw.cursor()
        if pg:
            _lean(cur)
        cur.execute(_sql(conn, grouped_sql(pg, where)), span)
        groups = cur.fetchall()
        cur.execute(_sql(conn, ids_sql(pg, where)), span * 2)
        ids = [(d, pv, kind, id_hash(v)) for d, pv, kind, v in cur.fetchall()]
        cur.close()
    n = sum(int(g[7]) for g in groups)
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        cur = raw.cursor()
        try:
            if pg:
                cur.execute("LOCK TABLE audit_days IN SHARE ROW EXCLUSIVE MODE")
            else:
                _begin_immediate(cur)
            cur.execute(_sql(conn, "SELECT n FROM audit_days WHERE day = ?"), (day,))
            row = cur.fetchone()
            if row is None or int(row[0]) != n:  # else another report just made it
                for table in ("audit_daily", "audit_daily_ids", "audit_days"):
                    cur.execute(_sql(conn, f"DELETE FROM {table} WHERE day = ?"), (day,))  # noqa: S608 - own names
                _insert(conn, cur, "audit_daily", groups)
                _insert(conn, cur, "audit_daily_ids", ids)
                cur.execute(_sql(conn, "INSERT INTO audit_days (day, n, made_at) VALUES (?, ?, ?)"), (day, n, now))
            raw.commit()
        except BaseException:
            raw.rollback()
            raise
        finally:
            cur.close()


def _insert(conn: sa.Connection, cur: Any, table: str, rows: list[Any]) -> None:
    """Append ``rows`` (every column, in order) to ``table``: with PostgreSQL's COPY through psycopg
    (several times faster than one INSERT a row, and a day holds thousands of ids: a day of a 1 M-row
    log is summarised in a third of the time), else one prepared INSERT for all of them."""
    if not rows:
        return
    if hasattr(cur, "copy"):  # psycopg 3
        with cur.copy(f"COPY {table} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join("?" * len(rows[0]))
    cur.executemany(_sql(conn, f"INSERT INTO {table} VALUES ({marks})"), rows)  # noqa: S608 - own names


def _begin_immediate(cur: Any, wait: float = 30.0) -> None:
    """SQLite's write lock, waited for: the audit engine has no busy timeout (the writer retries
    at once, see ``AuditLog._commit``), and the writer holds the lock only for one commit."""
    deadline = time.monotonic() + wait
    while True:
        try:
            cur.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.001)


def forget(conn: sa.Connection, before: float) -> None:
    """Delete the summaries of the days that ended at or before ``before`` (epoch seconds), in
    ``conn``'s transaction: retention calls it with its cutoff."""
    last = int(before // DAY)  # days < last ended at or before ``before``
    for table in DAILY_TABLES:
        conn.execute(table.delete().where(table.c.day < last))
