"""Checks across rows: problems with well-formed rows that are kept (the run goes on).

A row can be valid on its own and still be suspect next to the others. These checks run over
the valid rows of ``parsed_events`` (with Ibis, on every backend) and report each such row with
its file and line; the row stays in ``events``:

- ``duplicate request_id`` — a ``request_id`` already seen on an earlier row (file, then line
  order); the first occurrence is not reported.
- ``ts in the future`` — more than ``SKEW_TOLERANCE_MS`` after the time of the run.
- ``ts out of order`` — more than ``SKEW_TOLERANCE_MS`` before the latest time on an earlier
  line of the same file (logs are written in time order, give or take clock skew).
- ``account_id not in the accounts table`` — when an accounts table is given.
- ``account fields conflict`` (accounts table) — an ``account_id`` listed again with different
  fields; every later, different row is reported.
"""

from __future__ import annotations

import time
from typing import Any

from geowarden.analytics.engine import Engine, SourceFile
from geowarden.events import MAX_PROBLEMS, Problem

SKEW_TOLERANCE_MS = 5 * 60 * 1000
ACCOUNT_TEXT = ("created_ms", "payment_fingerprint", "phone_hash", "email_domain", "organisation", "declared_country")


def event_checks(parsed: Any, accounts: Any | None, *, now_ms: int | None = None) -> Any:
    """``src``, ``line``, ``problem`` for every valid row of ``parsed`` that fails a check (its
    first failing check, in the order of the module docstring)."""
    import ibis  # noqa: PLC0415

    now = int(time.time() * 1000) if now_ms is None else now_ms
    ok = parsed.filter(parsed.problem.isnull())
    first = ibis.row_number().over(group_by=ok.request_id, order_by=[ok.src, ok.line])
    earlier = ok.ts_ms.max().over(
        ibis.window(group_by=ok.src, order_by=ok.line, rows=(None, -1))  # the rows before this one
    )
    t = ok.select(src=ok.src, line=ok.line, account_id=ok.account_id, ts_ms=ok.ts_ms, _n=first, _prev=earlier)
    cases: list[tuple[Any, Any]] = [
        (t._n > 0, ibis.literal("duplicate request_id")),
        (t.ts_ms > now + SKEW_TOLERANCE_MS, ibis.literal("ts in the future")),
        (t.ts_ms < t._prev - SKEW_TOLERANCE_MS, ibis.literal("ts out of order")),
    ]
    if accounts is not None:
        known = accounts.select(_acc=accounts.account_id).distinct()
        t = t.left_join(known, t.account_id == known._acc)
        cases.append((t._acc.isnull(), ibis.literal("account_id not in the accounts table")))
    problem = ibis.cases(*cases, else_=ibis.null("string"))
    out = t.select(src=t.src, line=t.line, problem=problem)
    return out.filter(out.problem.notnull())


def account_checks(parsed_accounts: Any) -> Any:
    """``src``, ``line``, ``problem`` for each valid accounts row whose ``account_id`` was listed
    earlier with different fields."""
    import ibis  # noqa: PLC0415

    ok = parsed_accounts.filter(parsed_accounts.problem.isnull())
    w = ibis.window(group_by=ok.account_id, order_by=[ok.src, ok.line])
    t = ok.mutate(**{f"_first_{n}": ok[n].first(include_null=True).over(w) for n in ACCOUNT_TEXT})
    differs = ibis.literal(False)
    for n in ACCOUNT_TEXT:
        differs = differs | ~t[n].identical_to(t[f"_first_{n}"])
    out = t.filter(differs)
    return out.select(src=out.src, line=out.line, problem=ibis.literal("account fields conflict"))


def check_problems(engine: Engine, found: Any, files: list[SourceFile], limit: int = MAX_PROBLEMS) -> dict[str, Any]:
    """Counts and the first ``limit`` rows (file and line order) of a checks table: ``found``
    (rows flagged, kept), ``by_reason``, ``by_file``, ``rows``, ``truncated``."""
    counts = engine.to_arrow(found.group_by(["src", "problem"]).aggregate(n=found.count())).to_pylist()
    listed = engine.to_arrow(found.order_by(["src", "line"]).limit(limit)).to_pylist()
    by_reason: dict[str, int] = {}
    by_file: dict[str, int] = {}
    total = 0
    for row in counts:
        name = str(files[row["src"]].path)
        total += row["n"]
        by_reason[row["problem"]] = by_reason.get(row["problem"], 0) + row["n"]
        by_file[name] = by_file.get(name, 0) + row["n"]
    rows = [Problem(str(files[r["src"]].path), int(r["line"]), r["problem"]) for r in listed]
    return {
        "found": total,
        "by_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_file": by_file,
        "rows": [p.to_dict() for p in rows],
        "truncated": total > len(rows),
    }
