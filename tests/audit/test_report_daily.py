"""The report's daily summaries, on both back ends: a report read from them is the report read from
the rows; a day that changes after it was summarised (rows imported or pruned, a verdict given)
is reported as it is now; retention deletes the summaries of the days it prunes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from chain_support import KEY
from test_report import PLAN, Q1, Q2, _decision, fill_log

from geowarden.audit.schema import sqlite_url
from geowarden.audit.store import AuditLog
from geowarden.model import Action, Decision, Facts
from geowarden.reporting.figures import build

START = Q1 - 60 * 86400.0  # 2025-12-12
END = Q2 + 60 * 86400.0  # 2026-07-09
PAST = START  # a "now" at which no day of the range is closed: everything read from the rows


def _report(log: AuditLog, by: str = "month", **kw: Any) -> dict[str, Any]:
    doc = build(log.engine, START, END, by, meta={}, **kw)
    return {"summary": doc["summary"], "tables": doc["tables"]}


def _kept_days(log: AuditLog) -> list[tuple[int, int]]:
    with log.engine.connect() as conn:
        return [(int(d), int(n)) for d, n in conn.execute(sa.text("select day, n from audit_days order by day"))]


def test_a_report_from_the_summaries_is_the_report_from_the_rows(url: str) -> None:
    reviews = fill_log(url)
    log = AuditLog(url, key=KEY)
    try:
        for by in ("week", "month", "quarter"):
            rows = _report(log, by, now=PAST)
            assert by != "week" or _kept_days(log) == []  # nothing closed yet: nothing summarised
            first = _report(log, by)  # summarises the closed days
            kept = _kept_days(log)
            assert sum(n for _, n in kept) == sum(p[-1] for p in PLAN) + 1
            assert len([n for _, n in kept if n]) == 2 and len(kept) == (END - START) // 86400  # empty days too
            assert first == rows and _report(log, by) == rows  # and again, from the kept summaries
        assert _report(log, policy_version="other-bbbbbbbbbbbb")["summary"]["decisions"] == 1
        # A verdict given after the day was summarised shows in the next report.
        before = _report(log, "quarter")["tables"]["outcomes"][0]
        log.add_event(reviews[3], actor="r", event="overturn", review="overturned")
        after = _report(log, "quarter")["tables"]["outcomes"][0]
        assert (after["overturned"], after["confirmed"]) == (before["overturned"] + 1, before["confirmed"])
        assert _report(log, "quarter") == _report(log, "quarter", now=PAST)
    finally:
        log.close()


def test_rows_added_to_a_summarised_day_are_counted(url: str) -> None:
    fill_log(url)
    log = AuditLog(url, key=KEY)
    try:
        before = _report(log)
        log.append(_decision(Action.BLOCK, ["IP_COUNTRY_RESTRICTED"], "CN"), Facts(ip="1.2.3.4", account_id="new"),
                   ts=Q1 + 5.0)  # fmt: skip
        after = _report(log)
        assert after["summary"]["decisions"] == before["summary"]["decisions"] + 1
        assert after["summary"]["accounts"] == before["summary"]["accounts"] + 1
        assert after == _report(log, now=PAST)
    finally:
        log.close()


def test_retention_deletes_the_summaries_of_the_days_it_prunes(url: str) -> None:
    fill_log(url)
    log = AuditLog(url, key=KEY)
    try:
        _report(log)
        assert len([n for _, n in _kept_days(log) if n]) == 2
        log.retention_days = 1
        log.prune(now=Q1 + 30 * 86400.0)  # the Q1 day is pruned, the Q2 day is not yet
        assert [d for d, n in _kept_days(log) if n] == [int(Q2 // 86400)]
        assert min(d for d, _ in _kept_days(log)) == int((Q1 + 29 * 86400.0) // 86400)
        with log.engine.connect() as conn:
            days = {int(d) for (d,) in conn.execute(sa.text("select distinct day from audit_daily_ids"))}
        assert days == {int(Q2 // 86400)}
        rest = _report(log)
        assert rest["summary"]["decisions"] == sum(p[-1] for p in PLAN if p[0] == Q2) + 1
        assert rest == _report(log, now=PAST)
    finally:
        log.close()


def test_a_database_without_the_summary_tables_gets_them_on_open(url: str) -> None:
    log = AuditLog(url, key=KEY)
    log.append(_decision(Action.ALLOW, [], "DE"), Facts(ip="1.1.1.1"), ts=Q1)
    log.close()
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        for table in ("audit_daily", "audit_daily_ids", "audit_days"):
            conn.execute(sa.text(f"drop table {table}"))
    eng.dispose()
    log = AuditLog(url, key=KEY)
    try:
        assert _report(log)["summary"]["decisions"] == 1 and [n for _, n in _kept_days(log) if n] == [1]
    finally:
        log.close()


def test_a_report_waits_for_the_writer_s_lock_on_sqlite(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "audit.db")
    fill_log(url)
    log = AuditLog(url, key=KEY)
    holder = sqlite3.connect(tmp_path / "audit.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # as the writer does for each commit
    timer = threading.Timer(0.5, holder.rollback)
    timer.start()
    try:
        assert _report(log)["summary"]["decisions"] == sum(p[-1] for p in PLAN) + 1
        assert len([n for _, n in _kept_days(log) if n]) == 2
    finally:
        timer.join()
        holder.close()
        log.close()


def test_days_summarised_in_threads_are_the_days_summarised_one_by_one(url: str) -> None:
    from geowarden.audit.daily import DAILY_TABLES, closed_days, refresh

    fill_log(url)
    log = AuditLog(url, key=KEY)
    try:
        wanted = closed_days(START, END, END + 86400.0)
        tables: list[dict[str, list[tuple[Any, ...]]]] = []
        for workers in (1, 4):
            with log.engine.begin() as conn:
                for table in DAILY_TABLES:
                    conn.execute(table.delete())
            assert refresh(log.engine, wanted, now=1.0, workers=workers) == len(wanted)
            with log.engine.connect() as conn:
                tables.append({t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in DAILY_TABLES})
        assert tables[0] == tables[1]
        assert sum(n for _, n, _ in tables[0]["audit_days"]) > 0
    finally:
        log.close()


def test_a_day_s_summary_holds_exactly_what_grouping_its_rows_gives(url: str) -> None:
    """Awkward text (backslashes, tabs, newlines, quotes, non-ASCII, in ids and in the evidence the
    region hint is cut from) and missing values survive the summary's write, which on PostgreSQL
    goes through COPY: the kept rows are the rows grouping the day's decisions gives."""
    from geowarden.audit.daily import DAILY_TABLES, grouped_sql, id_hash, ids_sql, refresh

    log = AuditLog(url, key=KEY)
    odd = 'UA-43 \\ \t \n " é \\N'
    try:
        for n in range(12):
            d = _decision(Action.BLOCK, ["IP_COUNTRY_RESTRICTED"], "UA", region=odd if n % 2 else "UA-14")
            account = f"acct\t{n % 3}\\N\n'é" if n % 4 else None
            log.append(d, Facts(ip=f"203.0.113.{n}", account_id=account, api_key_id=f"key\\{n % 5}"), ts=Q1 + n)
        log.append(Decision(action=Action.ALLOW, score=0.0, reasons=(), policy_version="v", decision_id="f" * 32,
                            elapsed_us=1.0, evidence=()), Facts(ip="192.0.2.1"), ts=Q1 + 20)  # fmt: skip
        day = int(Q1 // 86400)
        assert refresh(log.engine, [day], now=Q1 + 3 * 86400.0) == 1
        pg = log.engine.dialect.name != "sqlite"
        where = "ts >= :a AND ts < :b"
        span = {"a": day * 86400.0, "b": (day + 1) * 86400.0}
        with log.engine.connect() as conn:
            want_groups = sorted(tuple(r) for r in conn.execute(sa.text(grouped_sql(pg, where)), span))
            ids = conn.execute(sa.text(ids_sql(pg, where)), span).all()
            want_ids = sorted((d, pv, kind, id_hash(v)) for d, pv, kind, v in ids)
            kept = {t.name: sorted(tuple(r) for r in conn.execute(sa.select(t))) for t in DAILY_TABLES}
        assert kept["audit_daily"] == want_groups
        assert kept["audit_daily_ids"] == want_ids
        assert any(r[6] is not None and "\\\\" in r[6] for r in want_groups)  # a hint with a backslash
        assert any(r[2] is None for r in want_groups) and any(k == "a" for _, _, k, _ in want_ids)
    finally:
        log.close()
