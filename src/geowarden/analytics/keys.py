"""Keys shared or resold (``key_shared``): one API key used by many people in many places.

A key that a reseller passes to hundreds of end users in a restricted country, directly or
through relays, looks like this in the log: several countries *at the same time* (within one
``bucket_minutes`` bucket), many unrelated networks (ASNs), much of it from hosting or VPN
exits around the clock, and a restricted jurisdiction in the mix — in the addresses themselves
or in the clients behind the relays (a time zone used only in restricted jurisdictions, an
Accept-Language region that is restricted: ``events.client_restricted``).

Honest heavy users look different, and the score is built so that they stay low:

- a company's key used by a big team comes from one egress (few networks, one country at a
  time, the same from one bucket to the next);
- an automation job in a cloud region runs 24/7 from hosting addresses, but from one region;
- a traveller changes country from one day to the next, never several at once;
- a global company with offices in several countries does use one key in several countries at
  once, but nothing about it points to a restricted jurisdiction.

So the score is ``sharing * breadth * (floor + (1 - floor) * exposure)`` (``common.floored``):

- *sharing* (``noisy_or`` of the parts, ``WEIGHTS``): ``spread`` (most countries in one bucket),
  ``concurrency`` (share of busy buckets, two requests or more, that have two countries or
  more) -- both scaled by *support*, the number of such buckets (one is a VPN reconnecting, a
  handful is a pattern) --, ``networks`` (distinct ASNs) and ``relay`` (share of hosting, VPN,
  proxy or Tor requests times the share of the day's hours it is active);
- *breadth*: distinct prefixes (one job in two cloud regions uses two; many people use many), or
  buckets where a restricted country and another one use the key together (``mixed``);
- *exposure*: the share of requests from restricted countries, or of the other requests with
  restricted-looking clients, whichever is higher.

Without any restricted exposure a key scores at most ``floor``, below ``min_score``. Each part is
linear between a "normal" and a "certainly" value (``thresholds.KeyThresholds``); every number
used is in the finding's ``evidence``.

Everything heavy runs in the backend: a pre-filter over the shared usage table
(``common.usage``: keys with ``min_events`` requests, more than one country or ``min_asns``
networks, and -- as long as ``floor < min_score`` -- some restricted exposure and breadth, without
which no key can reach ``min_score``), the candidates' events cached narrow, then plain
group-bys; only per-key counts come to Python, where the score is computed from integers (so
DuckDB and Spark agree exactly).
"""

from __future__ import annotations

from typing import Any

from geowarden.analytics.common import HOUR_MS, MINUTE_MS, anonymised, events, floored, noisy_or, ramp, rows, usage
from geowarden.analytics.findings import AnalysisContext, Finding
from geowarden.analytics.thresholds import KeyThresholds

NAME = "keys"
KIND = "key_shared"

#: Thresholds (override with ``settings["keys"][name]``).
THRESHOLDS = KeyThresholds
DEFAULTS = THRESHOLDS.defaults()

WEIGHTS = {"spread": 0.5, "concurrency": 0.5, "networks": 0.4, "relay": 0.25}


def run(ctx: AnalysisContext) -> list[Finding]:
    t = THRESHOLDS.read(ctx.settings)
    restricted = sorted(ctx.restricted)
    bucket_ms = int(t.bucket_minutes * MINUTE_MS)
    # A first pass over the shared usage table (far fewer rows than events): keys busy enough,
    # in more than one country or on many networks, that can reach min_score at all. Only
    # their events are looked at closely.
    with usage(ctx) as use:
        per = use.group_by("key").aggregate(
            n=use.n.sum(),
            countries=use.country.nunique(),
            asns=use.asn.nunique(),
            prefixes=use.prefix.nunique(),
            r=use.r.sum(),
            cr=use.cr.sum(),
        )
        cond = (per.n >= int(t.min_events)) & ((per.countries >= 2) | (per.asns >= int(t.min_asns)))
        if t.floor < t.min_score:  # no exposure: the score stays under floor
            cond &= (per.r > 0) | (per.cr > 0)
        if t.min_score > 0:  # no breadth (few prefixes, no restricted country): score 0
            cond &= (per.prefixes > int(t.prefixes_few)) | (per.r > 0)
        return _candidates(ctx, t, per.filter(cond).select("key"), bucket_ms, restricted)


def _candidates(
    ctx: AnalysisContext, t: KeyThresholds, busy: Any, bucket_ms: int, restricted: list[str]
) -> list[Finding]:
    """Score the keys in ``busy`` from their own events."""
    ev = events(ctx)
    near = ev.semi_join(busy, ev.api_key_id == busy.key)
    is_r = near.country.isin(restricted).fill_null(False)
    sub = near.select(
        key=near.api_key_id,
        account_id=near.account_id,
        prefix=near.prefix,
        asn=near.asn,
        country=near.country,
        r=is_r.cast("int64"),
        anon=anonymised(near).cast("int64"),
        rc=(near.client_restricted.fill_null(False) & ~is_r).cast("int64"),
        hour=(near.ts_ms // HOUR_MS) % 24,
        bucket=near.ts_ms // bucket_ms,
        ts_ms=near.ts_ms,
    ).cache()  # the candidates' events, narrow: everything below reads these, not the log
    try:
        # Plain group-bys first (distinct counts over many rows are slow); distinct counts then
        # run over the few rows per key these leave.
        nets = sub.group_by(["key", "account_id", "prefix", "asn", "country"]).aggregate(
            n=sub.count(),
            r=sub.r.sum(),
            anon=sub.anon.sum(),
            rc=sub.rc.sum(),
            first_ms=sub.ts_ms.min(),
            last_ms=sub.ts_ms.max(),
        )
        cells = sub.group_by(["key", "bucket", "country"]).aggregate(n=sub.count(), r=sub.r.max())
        hours = sub.group_by(["key", "hour"]).aggregate(n=sub.count())
        return _score_all(ctx, t, nets, cells, hours)
    finally:
        sub.release()


def _score_all(ctx: AnalysisContext, t: KeyThresholds, nets: Any, cells: Any, hours: Any) -> list[Finding]:
    """Findings from the per-key network usage, the (key, bucket, country) cells and the hours.
    Each small result is fetched on its own and they meet in Python: Spark cannot join two
    aggregates of one cached table in a plan."""
    per_key = nets.group_by("key").aggregate(
        events=nets.n.sum(),
        accounts=nets.account_id.nunique(),
        prefixes=nets.prefix.nunique(),
        asns=nets.asn.nunique(),
        countries=nets.country.nunique(),
        restricted=nets.r.sum(),
        anon=nets.anon.sum(),
        client_restricted=nets.rc.sum(),
        first_ms=nets.first_ms.min(),
        last_ms=nets.last_ms.max(),
    )
    cands = per_key.filter((per_key.countries >= 2) | (per_key.asns >= int(t.min_asns)))
    found = rows(cands)
    if not found:
        return []
    buckets = cells.group_by(["key", "bucket"]).aggregate(
        n=cells.n.sum(), c=cells.country.count(), r_max=cells.r.max(), r_min=cells.r.min()
    )
    conc = buckets.group_by("key").aggregate(
        busy=(buckets.n >= 2).cast("int64").sum(),
        concurrent=(buckets.c >= 2).cast("int64").sum(),
        mixed=((buckets.r_max == 1) & (buckets.r_min == 0)).cast("int64").sum(),
        max_at_once=buckets.c.max(),
    )
    wanted = {r["key"] for r in found}
    extra: dict[str, dict[str, Any]] = {r["key"]: r for r in rows(conc) if r["key"] in wanted}
    for r in rows(hours.group_by("key").aggregate(hours=hours.count())):
        if r["key"] in wanted:
            extra[r["key"]]["hours"] = r["hours"]
    countries: dict[str, list[tuple[str, int]]] = {}
    owners: dict[str, set[str]] = {}
    for r in rows(nets.group_by(["key", "account_id", "country"]).aggregate(n=nets.n.sum())):
        if r["key"] in wanted:
            owners.setdefault(r["key"], set()).add(r["account_id"])
            if r["country"] is not None:
                countries.setdefault(r["key"], []).append((r["country"], int(r["n"])))
    out = []
    for r in found:
        merged = {**r, **extra.get(r["key"], {})}
        per_country: dict[str, int] = {}
        for c, n in countries.get(r["key"], []):
            per_country[c] = per_country.get(c, 0) + n
        f = score_key(ctx, merged, list(per_country.items()), sorted(owners.get(r["key"], set())))
        if f is not None:
            out.append(f)
    out.sort(key=lambda f: (-f.score, f.subject))
    return out


def score_key(
    ctx: AnalysisContext, r: dict[str, Any], countries: list[tuple[str, int]], owners: list[str]
) -> Finding | None:
    """The finding for one candidate key (``r``: its counts), or None below ``min_score``."""
    t = THRESHOLDS.read(ctx.settings)
    n = int(r["events"])
    busy = int(r.get("busy") or 0)
    concurrent = int(r.get("concurrent") or 0)
    mixed = int(r.get("mixed") or 0)
    at_once = int(r.get("max_at_once") or 0)
    asns = int(r["asns"] or 0)
    restricted_n = int(r["restricted"] or 0)
    outside = n - restricted_n
    client_n = int(r["client_restricted"] or 0)
    hours = int(r["hours"] or 0)
    anon_share = int(r["anon"] or 0) / n
    concurrent_share = concurrent / busy if busy else 0.0
    restricted_share = restricted_n / n
    client_share = client_n / outside if outside else 0.0
    support = ramp(concurrent, 1, t.concurrent_buckets)
    parts = {
        "spread": ramp(at_once, 1, t.countries_at_once) * support,
        "concurrency": ramp(concurrent_share, 0.0, t.concurrent_share) * support,
        "networks": ramp(asns, t.asns_normal, t.asns_many),
        "relay": anon_share * hours / 24,
    }
    sharing = noisy_or(parts, WEIGHTS)
    breadth = max(
        ramp(int(r["prefixes"]), t.prefixes_few, t.prefixes_many),
        ramp(mixed, 0, t.concurrent_buckets),
    )
    exposure = max(
        ramp(restricted_share, 0.0, t.restricted_share),
        ramp(client_share, 0.0, t.client_share),
    )
    score = sharing * breadth * floored(exposure, t.floor)
    if score < t.min_score:
        return None
    countries.sort(key=lambda c: (-c[1], c[0]))
    top = int(t.top_countries)
    evidence = {
        "events": n,
        "accounts": int(r["accounts"]),
        "owner_accounts": sorted(owners)[:10],
        "prefixes": int(r["prefixes"]),
        "asns": asns,
        "countries": int(r["countries"]),
        "top_countries": [{"country": c, "events": k} for c, k in countries[:top]],
        "max_countries_at_once": at_once,
        "busy_buckets": busy,
        "concurrent_buckets": concurrent,
        "concurrent_share": round(concurrent_share, 4),
        "mixed_buckets": mixed,
        "bucket_minutes": t.bucket_minutes,
        "restricted_share": round(restricted_share, 4),
        "restricted_client_share": round(client_share, 4),
        "anonymised_share": round(anon_share, 4),
        "hours_active": hours,
        "first_seen_ms": int(r["first_ms"]),
        "last_seen_ms": int(r["last_ms"]),
        "sharing": round(sharing, 4),
        "breadth": round(breadth, 4),
        "exposure": round(exposure, 4),
        "components": {k: round(v, 4) for k, v in parts.items()},
    }
    return Finding(kind=KIND, subject=str(r["key"]), score=round(score, 6), evidence=evidence)
