"""The compliance report's figures: the audit log of a period, loaded into DuckDB and counted.

:func:`load` has the audit database (SQLite or PostgreSQL) count the decisions of ``[start, end)``
first — one row per UTC day and distinct (action, country, ASN, reason codes, review state,
policy version, restricted ISO 3166-2 region), with its count — and unique accounts and keys per
period, then moves those few rows (and the reviewed decisions with their review events) into an
in-memory DuckDB as Arrow batches through the driver's own cursor. The evidence and facts never
leave the database (an 80-byte excerpt of the evidence names a restricted region when there is
one). Closed days are read from the daily summaries kept beside the log
(:mod:`geowarden.audit.daily`, made the first time a report covers a day), so a report over
months reads summaries, not every row. :func:`figures` then computes every table in DuckDB SQL:

- ``periods``: per week, month or quarter: decisions, attempts (decisions that were not
  allowed), unique accounts and keys;
- ``jurisdictions``: attempts per period and jurisdiction (ISO 3166-1 country, or the restricted
  ISO 3166-2 region) and action; ``actions``: per period and action;
- ``techniques``: attempts per period and evasion technique, from the reason codes
  (:data:`TECHNIQUES`; one decision may show several);
- ``asns``: the networks with the most attempts over the whole range;
- ``changes``: period-over-period change of attempts, overall and for the five jurisdictions
  with most attempts, with a 95 % interval (counts as Poisson: the log of the ratio ± 1.96
  √(1/a + 1/b)), marked ``small`` when either count is under :data:`SMALL`;
- ``outcomes``: per period: challenges issued, challenges completed (challenged decisions whose
  trail holds a ``challenge`` event: the end user passed and got an allowlist token), decisions
  held for review, confirmed,
  overturned, appeals, the median delay from a decision to its appeal and from an appeal to its
  verdict, and the false-positive rate estimated from overturns among reviewed decisions (a
  Wilson 95 % interval; reviewed decisions are not a random sample, the report says so);
- ``policies``: the policy versions in force (first and last decision, count).

No table holds an address, an account or a key id: they are only counted.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from geowarden.audit.daily import GROUP_KEYS, closed_days, day_expr, grouped_sql, hint_expr, id_hash, refresh
from geowarden.audit.schema import REVIEW_STATES

SMALL = 30  # counts below this are marked: too few for a percentage to mean much
CHUNK = 100_000

#: Evasion technique -> the reason codes that show it. "foreign exit": an origin signal places
#: the client in a restricted jurisdiction while the address does not.
TECHNIQUES: dict[str, tuple[str, ...]] = {
    "vpn": ("IP_VPN",),
    "proxy": ("IP_PROXY", "RTT_TUNNEL_GAP"),
    "tor": ("IP_TOR",),
    "hosting relay": ("IP_HOSTING", "IP_RELAY"),
    "key sharing": (
        "KEY_MANY_COUNTRIES", "KEY_MANY_NETWORKS", "KEY_CONCURRENT_DISTANT", "KEY_IMPOSSIBLE_TRAVEL",
        "KEY_RELAY_SHAPE", "KEY_ROUND_THE_CLOCK",
    ),
    "coordinated network": ("KEY_FLAGGED",),
    "restricted client behind foreign exit": (
        "TZ_RESTRICTED", "LANG_RESTRICTED_REGION", "PHONE_COUNTRY_RESTRICTED", "CARD_ISSUER_RESTRICTED",
        "CARD_BILLING_RESTRICTED", "EMAIL_PROVIDER_RESTRICTED", "EMAIL_TLD_RESTRICTED", "RTT_TOO_FAR_FROM_CLAIMED",
    ),
}  # fmt: skip
PERIODS = ("week", "month", "quarter")
#: How a period is named (sorts in time order): 2026-W14 (ISO week), 2026-04, 2026-Q2.
_LABEL = {
    "week": "strftime(to_timestamp(ts), '%G-W%V')",
    "month": "strftime(to_timestamp(ts), '%Y-%m')",
    "quarter": "strftime(to_timestamp(ts), '%Y') || '-Q' || quarter(to_timestamp(ts))",
}

#: The columns of each table, in order (CSV and Parquet keep them even when a table is empty).
COLUMNS: dict[str, tuple[str, ...]] = {
    "periods": ("period", "decisions", "attempts", "accounts", "keys"),
    "actions": ("period", "action", "n"),
    "jurisdictions": ("period", "jurisdiction", "action", "n"),
    "techniques": ("period", "technique", "n"),
    "asns": ("asn", "attempts", "decisions"),
    "changes": (
        "period", "previous_period", "subject", "previous", "current", "change", "ci_low", "ci_high", "small",
    ),
    "outcomes": (
        "period", "challenges", "challenges_completed", "reviews", "confirmed", "overturned", "appeals",
        "median_hours_to_appeal", "median_hours_appeal_to_verdict", "false_positive_rate", "fp_ci_low",
        "fp_ci_high", "small",
    ),
    "policies": ("policy_version", "decisions", "first_decision", "last_decision"),
}  # fmt: skip

_SCHEMA = pa.schema(
    [("day", pa.int64()), ("action", pa.string()), ("country", pa.string()), ("asn", pa.int64()),
     ("reasons", pa.string()), ("review", pa.string()), ("policy_version", pa.string()), ("region_hint", pa.string()),
     ("n", pa.int64()), ("first_ts", pa.float64()), ("last_ts", pa.float64())]
)  # fmt: skip
_IDS_SCHEMA = pa.schema([("day", pa.int64()), ("kind", pa.string()), ("hid", pa.int64())])
_SUMMARY_SCHEMA = pa.schema([f for f in _SCHEMA if f.name != "review"])
#: Decisions that reached review, through the index on ``review`` (``<> 'none'`` would scan).
_REVIEWED = "review IN (" + ", ".join(f"'{s}'" for s in REVIEW_STATES if s != "none") + ")"
_REVIEWED_SCHEMA = pa.schema([("decision_id", pa.string()), ("ts", pa.float64())])
_EVENT_SCHEMA = pa.schema([("decision_id", pa.string()), ("ts", pa.float64()), ("event", pa.string())])


def _stream(engine: sa.Engine, sql: str, params: tuple[Any, ...]) -> Iterator[list[tuple[Any, ...]]]:
    """Chunks of rows through the driver's cursor (server-side on PostgreSQL)."""
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        if conn.dialect.name == "sqlite":
            cur = raw.cursor()
        else:
            cur, sql = raw.cursor(name="gw_report"), sql.replace("?", "%s")
        try:
            cur.execute(sql, params)
            while chunk := cur.fetchmany(CHUNK):
                yield chunk
        finally:
            cur.close()


def _batches(chunks: Iterator[list[tuple[Any, ...]]], schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for chunk in chunks:
        cols = list(zip(*chunk, strict=True))
        yield pa.RecordBatch.from_arrays(
            [pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
        )


def _table(db: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    db.register(f"{name}_arrow", table)
    db.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")  # noqa: S608 - this module's names
    db.unregister(f"{name}_arrow")


def _live(start: float, end: float, closed: list[int]) -> list[tuple[float, float]]:
    """The parts of ``[start, end)`` not covered by the summarised days ``closed`` (contiguous)."""
    if not closed:
        return [(start, end)]
    parts = [(start, closed[0] * 86400.0), ((closed[-1] + 1) * 86400.0, end)]
    return [(lo, hi) for lo, hi in parts if lo < hi]


def _ids(
    engine: sa.Engine, closed: list[int], live: list[tuple[float, float]], pv: str, pv_p: tuple[Any, ...]
) -> pa.Table:
    """(day, kind, hid) of the range's accounts and keys: the kept ids of the closed days, and
    those of the rest's rows, hashed the same way (:func:`geowarden.audit.daily.id_hash`)."""
    batches: list[pa.RecordBatch] = []
    for kind in ("a", "k") if closed else ():  # two integer columns per kind: cheap to move
        sql = f"SELECT day, hid FROM audit_daily_ids WHERE kind = ? AND day >= ? AND day < ?{pv}"  # noqa: S608
        for chunk in _stream(engine, sql, (kind, closed[0], closed[-1] + 1, *pv_p)):
            days, hids = zip(*chunk, strict=True)
            batches.append(pa.RecordBatch.from_arrays(
                [pa.array(days, pa.int64()), pa.array([kind] * len(days), pa.string()), pa.array(hids, pa.int64())],
                schema=_IDS_SCHEMA))  # fmt: skip
    chunks: list[list[tuple[Any, ...]]] = []
    for a, b in live:
        sql = (
            f"SELECT ts, account_id, api_key_id FROM decisions WHERE ts >= ? AND ts < ?{pv} "  # noqa: S608
            "AND (account_id IS NOT NULL OR api_key_id IS NOT NULL)"
        )
        for chunk in _stream(engine, sql, (a, b, *pv_p)):
            rows = [(int(ts // 86400), "a", id_hash(acc)) for ts, acc, _ in chunk if acc is not None]
            chunks.append(rows + [(int(ts // 86400), "k", id_hash(key)) for ts, _, key in chunk if key is not None])
    batches += _batches(iter(c for c in chunks if c), _IDS_SCHEMA)
    return pa.Table.from_batches(batches, schema=_IDS_SCHEMA)


def load(
    engine: sa.Engine,
    start: float,
    end: float,
    by: str = "month",
    *,
    policy_version: str | None = None,
    now: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding, for the decisions of ``[start, end)``:

    - ``d``: the decisions counted by the database first — one row per UTC day and distinct
      (action, country, ASN, reason codes, review state, policy version, restricted region), with
      its count ``n`` and first and last time: what the report groups by, far fewer rows to move.
      Closed days come from their kept summaries (:mod:`geowarden.audit.daily`, made now for the
      days that have none or a stale one), the rest of the range from the rows; the review state,
      which changes after the day, from the reviewed decisions (through the index on ``review``);
    - ``u``: unique accounts and keys per period of ``by`` (and ``u_all`` over the whole range),
      counted by the database from the summaries' ids and the rest of the range's rows;
    - ``o``: the decisions that reached review (id and time), and ``e``: their review events;
    - ``c``: the decisions whose trail holds a passed challenge (id and time of the decision).
    """
    pg = engine.dialect.name != "sqlite"
    closed = closed_days(start, end, time.time() if now is None else now)
    refresh(engine, closed, now=now)
    live = _live(start, end, closed)
    pv = " AND policy_version = ?" if policy_version is not None else ""
    pv_p: tuple[Any, ...] = () if policy_version is None else (policy_version,)
    live_where = "(" + (" OR ".join("(ts >= ? AND ts < ?)" for _ in live) or "1 = 0") + ")" + pv
    live_p = tuple(x for part in live for x in part) + pv_p
    span = (closed[0], closed[-1] + 1) if closed else (0, 0)
    where = "ts >= ? AND ts < ?" + pv
    params: tuple[Any, ...] = (start, end, *pv_p)
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    kept = (
        "SELECT day, action, country, asn, reasons, policy_version, region_hint, n, first_ts, last_ts "  # noqa: S608
        f"FROM audit_daily WHERE day >= ? AND day < ?{pv}"
    )
    summary = [*_stream(engine, kept, span + pv_p), *_stream(engine, grouped_sql(pg, live_where), live_p)]
    _table(db, "s", pa.Table.from_batches(list(_batches(iter(summary), _SUMMARY_SCHEMA)), schema=_SUMMARY_SCHEMA))
    day, hint, keys = day_expr(pg), hint_expr(pg), ", ".join(GROUP_KEYS)
    reviewed_groups = (
        f"SELECT {day}, action, country, asn, reasons, review, policy_version, {hint}, count(*), min(ts), max(ts) "  # noqa: S608
        f"FROM decisions WHERE {where} AND {_REVIEWED} GROUP BY {day}, {keys}, review, {hint}"
    )
    _table(db, "rv", pa.Table.from_batches(list(_batches(_stream(engine, reviewed_groups, params), _SCHEMA)),
                                           schema=_SCHEMA))  # fmt: skip
    same = " AND ".join(f"s.{k} IS NOT DISTINCT FROM r.{k}" for k in ("day", *GROUP_KEYS, "region_hint"))
    db.execute(
        f"""CREATE TABLE d AS
        WITH r AS (SELECT day, {keys}, region_hint, sum(n) AS n FROM rv GROUP BY ALL)
        SELECT s.day, s.action, s.country, s.asn, s.reasons, 'none' AS review, s.policy_version, s.region_hint,
            (s.n - coalesce(r.n, 0))::BIGINT AS n, s.first_ts, s.last_ts
        FROM s LEFT JOIN r ON {same} WHERE s.n - coalesce(r.n, 0) > 0
        UNION ALL SELECT * FROM rv"""  # noqa: S608 - this module's names
    )
    # Unique accounts and keys, per period and over the whole range: the ids of the range (kept
    # per day as 64-bit hashes) move into DuckDB, which counts them.
    _table(db, "ids", _ids(engine, closed, live, pv, pv_p))
    count = "count(DISTINCT hid) FILTER (WHERE kind = 'a'), count(DISTINCT hid) FILTER (WHERE kind = 'k')"
    label = _LABEL[by].replace("to_timestamp(ts)", "to_timestamp(day * 86400)")
    db.execute(f"CREATE TABLE u AS SELECT {label} AS period, {count.replace(', ', ' AS accounts, ')} AS keys "  # noqa: S608
               "FROM ids GROUP BY 1")  # fmt: skip
    db.execute(f"CREATE TABLE u_all AS SELECT {count.replace(', ', ' AS accounts, ')} AS keys FROM ids")  # noqa: S608
    reviewed = f"SELECT decision_id, ts FROM decisions WHERE {where} AND {_REVIEWED}"  # noqa: S608
    _table(db, "o", pa.Table.from_batches(list(_batches(_stream(engine, reviewed, params), _REVIEWED_SCHEMA)),
                                          schema=_REVIEWED_SCHEMA))  # fmt: skip
    x_where = f"x.{where.replace(' AND ', ' AND x.')}"
    ev_sql = (
        "SELECT e.decision_id, e.ts, e.event FROM review_events e JOIN decisions x ON x.decision_id = e.decision_id "  # noqa: S608 - own conditions
        f"WHERE {x_where} AND x.{_REVIEWED}"
    )
    _table(db, "e", pa.Table.from_batches(list(_batches(_stream(engine, ev_sql, params), _EVENT_SCHEMA)),
                                          schema=_EVENT_SCHEMA))  # fmt: skip
    passed = (
        "SELECT DISTINCT x.decision_id, x.ts FROM review_events e JOIN decisions x ON x.decision_id = e.decision_id "  # noqa: S608 - own conditions
        f"WHERE {x_where} AND e.event = 'challenge'"
    )
    _table(db, "c", pa.Table.from_batches(list(_batches(_stream(engine, passed, params), _REVIEWED_SCHEMA)),
                                          schema=_REVIEWED_SCHEMA))  # fmt: skip
    return db


def _rows(db: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = db.execute(sql, params or [])
    names = [c[0] for c in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def figures(db: duckdb.DuckDBPyConnection, by: str, *, top_asns: int = 20) -> dict[str, list[dict[str, Any]]]:
    """Every table of the report (see the module) from :func:`load`'s connection."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {', '.join(PERIODS)}")
    cases = []
    for name, codes in TECHNIQUES.items():
        test = " OR ".join("contains(reasons, '\"" + c + "\"')" for c in codes)
        if name == "restricted client behind foreign exit":  # ... while the address is not restricted
            test = f"({test}) AND NOT contains(reasons, '\"IP_COUNTRY_RESTRICTED\"')"
        cases.append(f'({test}) AS "{name}"')
    tech_cases = ", ".join(cases)
    db.execute(
        f"""CREATE OR REPLACE TEMP VIEW r AS SELECT *, day * 86400.0 AS ts,
            {_LABEL[by]} AS period,
            action <> 'allow' AS attempt,
            coalesce(regexp_extract(region_hint, '"value": "([A-Z]{{2}}-[A-Z0-9]{{1,3}})"', 1), '') AS region,
            {tech_cases}
        FROM d"""  # noqa: S608 - the names and codes are this module's constants
    )
    out: dict[str, list[dict[str, Any]]] = {}
    out["periods"] = _rows(
        db,
        """SELECT r.period, sum(n)::BIGINT AS decisions, coalesce(sum(n) FILTER (WHERE attempt), 0)::BIGINT AS attempts,
        coalesce(any_value(u.accounts), 0) AS accounts, coalesce(any_value(u.keys), 0) AS keys
        FROM r LEFT JOIN u USING (period) GROUP BY r.period ORDER BY r.period""",
    )
    out["actions"] = _rows(
        db, "SELECT period, action, sum(n)::BIGINT AS n FROM r GROUP BY ALL ORDER BY period, n DESC, action"
    )
    out["jurisdictions"] = _rows(
        db,
        """SELECT period, CASE WHEN region <> '' THEN region ELSE coalesce(country, '??') END
        AS jurisdiction, action, sum(n)::BIGINT AS n FROM r WHERE attempt
        GROUP BY ALL ORDER BY period, n DESC, jurisdiction""",
    )
    unions = " UNION ALL ".join(
        f"SELECT period, '{name}' AS technique, coalesce(sum(n) FILTER (WHERE \"{name}\"), 0)::BIGINT AS n "  # noqa: S608
        "FROM r WHERE attempt GROUP BY period"
        for name in TECHNIQUES
    )
    out["techniques"] = _rows(db, f"SELECT * FROM ({unions}) WHERE n > 0 ORDER BY period, n DESC, technique")  # noqa: S608
    out["asns"] = _rows(
        db,
        """SELECT asn, coalesce(sum(n) FILTER (WHERE attempt), 0)::BIGINT AS attempts, sum(n)::BIGINT AS decisions
        FROM r WHERE asn IS NOT NULL GROUP BY asn ORDER BY attempts DESC, decisions DESC, asn LIMIT ?""",
        [top_asns],
    )
    out["changes"] = _changes(db, out["periods"])
    out["outcomes"] = _outcomes(db, by)
    out["policies"] = _rows(
        db,
        """SELECT policy_version, sum(n)::BIGINT AS decisions,
        strftime(to_timestamp(min(first_ts)), '%Y-%m-%dT%H:%M:%SZ') AS first_decision,
        strftime(to_timestamp(max(last_ts)), '%Y-%m-%dT%H:%M:%SZ') AS last_decision
        FROM r GROUP BY policy_version ORDER BY min(first_ts)""",
    )
    return out


def change(a: int, b: int) -> dict[str, Any]:
    """From ``a`` to ``b`` events: the relative change and its 95 % interval (Poisson counts:
    log(b/a) ± 1.96 √(1/a + 1/b)); None where undefined (a zero count); ``small`` under SMALL."""
    small = min(a, b) < SMALL
    if a == 0 or b == 0:
        return {"change": None if a == 0 else -1.0, "ci_low": None, "ci_high": None, "small": small}
    ratio, se = b / a, math.sqrt(1 / a + 1 / b)
    return {
        "change": ratio - 1,
        "ci_low": math.exp(math.log(ratio) - 1.96 * se) - 1,
        "ci_high": math.exp(math.log(ratio) + 1.96 * se) - 1,
        "small": small,
    }


def _changes(db: duckdb.DuckDBPyConnection, periods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    top = [
        r["j"]
        for r in _rows(
            db,
            """SELECT CASE WHEN region <> '' THEN region ELSE coalesce(country, '??') END AS j
        FROM r WHERE attempt GROUP BY j ORDER BY sum(n) DESC, j LIMIT 5""",
        )
    ]
    per = {
        (r["period"], r["j"]): int(r["n"])
        for r in _rows(
            db,
            """SELECT period, CASE WHEN region <> '' THEN region ELSE coalesce(country, '??') END AS j,
            sum(n)::BIGINT AS n FROM r WHERE attempt GROUP BY ALL""",
        )
    }
    out = []
    names = [p["period"] for p in periods]
    for prev, cur in itertools.pairwise(names):
        pairs = [("all attempts", _total(periods, prev), _total(periods, cur))]
        pairs += [(j, per.get((prev, j), 0), per.get((cur, j), 0)) for j in top]
        for subject, a, b in pairs:
            out.append({"period": cur, "previous_period": prev, "subject": subject, "previous": a, "current": b}
                       | change(a, b))  # fmt: skip
    return out


def _total(periods: list[dict[str, Any]], name: str) -> int:
    return next(int(p["attempts"]) for p in periods if p["period"] == name)


def wilson(k: int, n: int) -> tuple[float | None, float | None, float | None]:
    """The share k/n with its Wilson 95 % interval; Nones when n is 0."""
    if n == 0:
        return None, None, None
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return p, max(0.0, centre - half), min(1.0, centre + half)


def _outcomes(db: duckdb.DuckDBPyConnection, by: str) -> list[dict[str, Any]]:
    rows = _rows(
        db,
        f"""
        WITH appeal AS (SELECT decision_id, min(ts) AS at FROM e WHERE event = 'appeal' GROUP BY decision_id),
        verdict AS (SELECT e.decision_id, min(e.ts) AS at FROM e JOIN appeal a USING (decision_id)
                    WHERE e.event IN ('confirm', 'overturn') AND e.ts >= a.at GROUP BY e.decision_id),
        counts AS (SELECT period,
            coalesce(sum(n) FILTER (WHERE action = 'challenge'), 0)::BIGINT AS challenges,
            coalesce(sum(n) FILTER (WHERE action = 'review' OR review <> 'none'), 0)::BIGINT AS reviews,
            coalesce(sum(n) FILTER (WHERE review = 'confirmed'), 0)::BIGINT AS confirmed,
            coalesce(sum(n) FILTER (WHERE review = 'overturned'), 0)::BIGINT AS overturned
            FROM r GROUP BY period),
        ap AS (SELECT {_LABEL[by]} AS period, count(*) AS appeals,
            median(a.at - ts) / 3600.0 AS median_hours_to_appeal,
            median(v.at - a.at) / 3600.0 AS median_hours_appeal_to_verdict
            FROM o JOIN appeal a USING (decision_id) LEFT JOIN verdict v USING (decision_id) GROUP BY 1),
        passed AS (SELECT {_LABEL[by]} AS period, count(*)::BIGINT AS challenges_completed FROM c GROUP BY 1)
        SELECT k.period, k.challenges, coalesce(p.challenges_completed, 0)::BIGINT AS challenges_completed,
            k.reviews, k.confirmed, k.overturned, coalesce(ap.appeals, 0) AS appeals, ap.median_hours_to_appeal,
            ap.median_hours_appeal_to_verdict
        FROM counts k LEFT JOIN ap USING (period) LEFT JOIN passed p USING (period) ORDER BY k.period""",  # noqa: S608 - this module's expressions
    )
    for row in rows:
        fp, lo, hi = wilson(int(row["overturned"]), int(row["confirmed"]) + int(row["overturned"]))
        row.update(false_positive_rate=fp, fp_ci_low=lo, fp_ci_high=hi,
                   small=int(row["confirmed"]) + int(row["overturned"]) < SMALL)  # fmt: skip
    return rows


def build(
    engine: sa.Engine,
    start: float,
    end: float,
    by: str,
    *,
    policy_version: str | None = None,
    meta: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The whole report document: ``meta``, ``summary`` over the range, and the ``tables``
    (``now``: the time that decides which days are closed, see :func:`load`)."""
    db = load(engine, start, end, by, policy_version=policy_version, now=now)
    try:
        tables = figures(db, by)
        summary = _rows(
            db,
            """SELECT coalesce(sum(n), 0)::BIGINT AS decisions,
            coalesce(sum(n) FILTER (WHERE action <> 'allow'), 0)::BIGINT AS attempts,
            any_value(u_all.accounts) AS accounts, any_value(u_all.keys) AS keys FROM u_all LEFT JOIN d ON true""",
        )[0]
    finally:
        db.close()
    return {
        "meta": dict(meta or {}) | {"by": by, "policy_version": policy_version},
        "summary": {k: int(v) for k, v in summary.items()},
        "empty": summary["decisions"] == 0,
        "tables": tables,
    }
