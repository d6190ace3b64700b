"""Opening an audit database: create it, check its schema version, or migrate an older one.

- no tables yet: create them all, schema version :data:`.chain.SCHEMA_VERSION`;
- version 1 (``decisions`` and ``review_events`` without the chain, before the chain existed):
  the chain tables are created and every existing row is chained in time order, in one
  transaction, with a note of the migration in ``audit_meta`` (rows written before the
  migration were not protected while they were written: the chain proves only that they have
  not changed since);
- the current version: the additions that need no version step (:func:`add_missing`) are made;
- anything else (a newer version, or a ``decisions`` table missing columns): refused with one
  line (a :class:`~geowarden.errors.ConfigError`), nothing touched.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from geowarden.audit.chain import (
    CHAIN_SEGMENT_SEQ,
    CHAIN_TABLES,
    SCHEMA_VERSION,
    ChainKey,
    RawTx,
    append,
    decision_content,
    event_content,
    meta,
)
from geowarden.audit.daily import DAILY_TABLES
from geowarden.audit.schema import decisions, metadata, review_events, safe_url
from geowarden.errors import ConfigError

log = logging.getLogger("geowarden.audit")


def schema_version(engine: sa.Engine) -> int | None:
    """The database's schema version: None when empty, 1 before the chain, else as recorded."""
    names = set(sa.inspect(engine).get_table_names())
    if "audit_meta" in names:
        with engine.connect() as conn:
            value = conn.execute(sa.select(meta.c.value).where(meta.c.name == "schema_version")).scalar()
        try:
            return int(value) if value is not None else 1
        except ValueError:
            return -1
    return 1 if "decisions" in names else None


def prepare(engine: sa.Engine, key: ChainKey) -> None:
    """Make ``engine``'s database usable by this version, or raise ConfigError (see the module)."""
    where = safe_url(engine.url.render_as_string(hide_password=False))
    try:
        version = schema_version(engine)
    except sa.exc.OperationalError as exc:
        reason = " ".join(str(exc.orig or exc).split())[:160]
        raise ConfigError(f"audit database {where} is unreachable: {reason}") from None
    if version == SCHEMA_VERSION:
        add_missing(engine)
        return
    if version is None:
        metadata.create_all(engine)
        _set_version(engine)
        return
    if version != 1:
        newer = "a newer geowarden" if version > SCHEMA_VERSION else "an unknown geowarden"
        raise ConfigError(
            f"audit database {where} has schema version {version}, written by {newer}; "
            f"this one reads version {SCHEMA_VERSION}"
        )
    inspector = sa.inspect(engine)
    for table in (decisions, review_events):
        have = {c["name"] for c in inspector.get_columns(table.name)} if inspector.has_table(table.name) else set()
        missing = [c.name for c in table.columns if c.name not in have]
        if missing:
            raise ConfigError(
                f"audit database {where} has an older schema that cannot be migrated "
                f"(table {table.name} lacks {', '.join(missing)}); move it aside and start a new one"
            )
    n = migrate_v1(engine, key)
    add_missing(engine)
    log.info("migrated the audit database to the chained schema", extra={"rows_chained": n, "database": where})


def migrate_v1(engine: sa.Engine, key: ChainKey) -> int:
    """Chain every row of a version-1 database, oldest first; returns how many were chained."""
    metadata.create_all(engine, tables=list(CHAIN_TABLES))
    with engine.connect() as conn:
        entries = [
            ("d", r["decision_id"], decision_content(dict(r)), float(r["ts"]))
            for r in conn.execute(sa.select(decisions)).mappings()
        ]
        entries += [
            ("e", str(r["id"]), event_content(dict(r)), float(r["ts"]))
            for r in conn.execute(sa.select(review_events)).mappings()
        ]
    entries.sort(key=lambda e: (e[3], e[0], e[1]))
    tx = RawTx(engine)
    try:
        if tx.execute("SELECT count(*) FROM audit_chain").fetchone()[0] == 0:  # another process may have won
            append(tx, key, entries)
            now = repr(time.time())
            tx.execute("INSERT INTO audit_meta (name, value) VALUES (?, ?)", ("schema_version", str(SCHEMA_VERSION)))
            tx.execute("INSERT INTO audit_meta (name, value) VALUES (?, ?)", ("migrated_from", "1"))
            tx.execute("INSERT INTO audit_meta (name, value) VALUES (?, ?)", ("migrated_at", now))
        tx.commit()
    except BaseException:
        tx.rollback()
        raise
    finally:
        tx.close()
    return len(entries)


def add_missing(engine: sa.Engine) -> None:
    """Add what this version keeps beside the version-2 schema and an older geowarden of the
    same version neither needs nor breaks: the index on the chain's (segment, seq) that ``audit
    verify`` reads pieces through, and the tables of the daily summaries the report reads
    (:mod:`.daily`). Idempotent; several processes may open the database at once."""
    with engine.begin() as conn:
        conn.execute(sa.text(
            f"CREATE INDEX IF NOT EXISTS {CHAIN_SEGMENT_SEQ.name} ON audit_chain (segment, seq)"
        ))  # fmt: skip
        for table in DAILY_TABLES:
            conn.execute(sa.schema.CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def _set_version(engine: sa.Engine) -> None:
    try:
        with engine.begin() as conn:
            conn.execute(meta.insert(), [{"name": "schema_version", "value": str(SCHEMA_VERSION)}])
    except sa.exc.IntegrityError:
        pass  # another process opening the same new database recorded it first
