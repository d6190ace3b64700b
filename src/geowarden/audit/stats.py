"""Aggregates of the decision log for the dashboard: by action, country, reason, network, hour.

:func:`counts` is what :meth:`geowarden.audit.store.AuditLog.counts` returns: a few grouped
queries over ``decisions`` in one connection, then the reasons (a JSON list per row) counted
in Python.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from geowarden.audit.schema import decisions


def counts(engine: sa.Engine, *, since: float = 0.0, top_asns: int = 20, top_reasons: int = 5) -> dict[str, Any]:
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

    with engine.connect() as conn:
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
