"""The behaviour signal: how an API key (and its account) is being used, across requests.

Where a request comes from is one fact; how a key is used is another. A key resold to many
users across borders is used from many networks and countries at once, moves faster than any
aircraft, works round the clock, and its traffic leaves from cloud relays on a clock that is
not its addresses'. This signal keeps per-key and per-account state in the store the Warden
was given (``geowarden.state``: memory or Redis), updates it with the request and reads the
features back in one step (one round trip to Redis), then reports evidence with the numbers.

Thresholds are the policy's (its ``behaviour:`` section, ``BehaviourConfig``): the signal
emits ``KEY_*`` codes where they are crossed, and ``KEY_ACTIVITY`` with every feature always,
so a policy can also write its own conditions on the ``key`` variable.

Locations are countries (the address's, as the ip signal placed it). The distance between two
uses is a lower bound: the shortest distance between any two populated places (GeoNames, 15,000
people or more; the most populous ``PLACES_PER_COUNTRY`` of each) of the two countries, so
neighbouring countries are never "far apart" and a flag means the physics really rule it out.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np

from geowarden.errors import ConfigError
from geowarden.model import Evidence, Facts
from geowarden.state.base import Count, Distinct, FirstSeen, Flags, Hours, Op, Places, StateStore

SIGNAL = "key"
WINDOWS = (600, 3600, 86400)  # distinct counts: 10 minutes, 1 hour, 1 day
VOLUME_WINDOWS = (3600, 7 * 86400)  # requests and tokens: 1 hour, 7 days
PLACES_TTL = 86400
FIRST_SEEN_TTL = 90 * 86400
PLACES_PER_COUNTRY = 300
_LABELS = frozenset({"IP_HOSTING", "IP_VPN", "IP_PROXY", "IP_TOR"})

CODES: dict[str, tuple[str, str]] = {
    "KEY_ACTIVITY": (
        SIGNAL,
        "Every behaviour feature of the key and its account after this request (distinct networks, "
        "countries, places, hours, volumes); informational, and what the policy's `key` variable reads.",
    ),
    "KEY_MANY_NETWORKS": (
        SIGNAL,
        "The key was used from more distinct networks (/24 or /48 prefixes) or ASNs in the window "
        "than the policy allows; value: counts, window, threshold.",
    ),
    "KEY_MANY_COUNTRIES": (
        SIGNAL,
        "The key was used from more distinct countries in the window than the policy allows; "
        "value: count, window, threshold.",
    ),
    "KEY_CONCURRENT_DISTANT": (
        SIGNAL,
        "The key was used from places at least the policy's distance apart within seconds of each "
        "other: more than one user; value: countries, km (lower bound), seconds, restricted places.",
    ),
    "KEY_IMPOSSIBLE_TRAVEL": (
        SIGNAL,
        "Between two uses of the key the implied speed exceeds any aircraft's; value: countries, "
        "km (lower bound), hours, km/h, restricted places.",
    ),
    "KEY_ROUND_THE_CLOCK": (
        SIGNAL,
        "The key was active in nearly every hour of the last day: a relay's or a service's shape, "
        "not a person's; value: active hours, requests.",
    ),
    "KEY_RELAY_SHAPE": (
        SIGNAL,
        "The key's traffic comes mostly from hosting/VPN ranges and its daily rhythm fits a "
        "restricted country's clock, not its addresses'; value: hosting share, inferred UTC offset, "
        "the countries it fits.",
    ),
    "ACCOUNT_VOLUME_SPIKE": (
        SIGNAL,
        "The account's token volume in the last hour is many times its own hourly average; value: "
        "tokens, baseline, ratio.",
    ),
    "KEY_FLAGGED": (
        SIGNAL,
        "Batch analytics flagged this key or its account (e.g. a shared key, an account cluster or "
        "a campaign); value: the findings' kinds, scores and subjects.",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BehaviourConfig:
    """The policy's ``behaviour:`` thresholds (every field optional in the file)."""

    networks_window: int = 3600
    networks_max: int = 12  # distinct /24 or /48 prefixes per window
    asns_max: int = 6  # distinct ASNs per window
    countries_window: int = 86400
    countries_max: int = 3  # distinct countries per window
    concurrent_seconds: int = 300
    concurrent_km: float = 1500.0
    travel_kmh: float = 1000.0  # faster than any airliner's ground speed, less tail winds
    round_the_clock_hours: int = 22  # active hours out of the last 24
    round_the_clock_min_requests: int = 100  # in the last 24 hours
    relay_hosting_share: float = 0.8  # of the last day's requests
    relay_min_requests: int = 50  # in the hour profile (7 days)
    relay_offset_gap_hours: float = 4.0  # inferred clock vs the addresses' countries
    volume_ratio: float = 10.0
    volume_min_tokens: int = 200_000  # in the last hour
    volume_min_history_hours: int = 48

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str = "behaviour") -> BehaviourConfig:
        known = {f.name: f for f in fields(cls)}
        bad = sorted(set(raw) - set(known))
        if bad:
            raise ConfigError(f"{where}: unknown setting(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
        values: dict[str, Any] = {}
        for name, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{where}.{name}: must be a number >= 0, not {value!r}")
            values[name] = int(value) if known[name].type in ("int", int) else float(value)
        return cls(**values)


DEFAULT_CONFIG = BehaviourConfig()


class Context(Protocol):
    """What the signal reads from the Warden's context."""

    @property
    def restricted(self) -> frozenset[str]: ...

    @property
    def ip_country(self) -> str | None: ...

    @property
    def found(self) -> Sequence[Evidence]: ...

    @property
    def state(self) -> StateStore | None: ...

    @property
    def behaviour(self) -> BehaviourConfig: ...


@dataclass(frozen=True, slots=True)
class Observation:
    """What one request contributes to the state."""

    subject: str  # "k:<key id>" or "a:<account id>" when there is no key
    account: str | None  # "a:<account id>"
    ip: str
    prefix: str
    asn: str
    country: str
    anonymised: bool  # hosting, VPN, proxy or Tor
    tokens: float


def observe(facts: Facts, found: Sequence[Evidence]) -> Observation | None:
    """The observation for a request, or None when it names neither a key nor an account."""
    if facts.api_key_id:
        subject = "k:" + facts.api_key_id
    elif facts.account_id:
        subject = "a:" + facts.account_id
    else:
        return None
    country = asn = ""
    anonymised = False
    for e in found:
        if e.code == "IP_COUNTRY" and isinstance(e.value, str):
            country = e.value
        elif e.code == "IP_NETWORK" and isinstance(e.value, dict) and e.value.get("asn") is not None:
            asn = str(e.value["asn"])
        elif e.code in _LABELS:
            anonymised = True
    tokens = facts.input_tokens or 0
    return Observation(
        subject=subject,
        account="a:" + facts.account_id if facts.account_id and facts.api_key_id else None,
        ip=facts.ip or "",
        prefix=prefix_of(facts.ip or ""),
        asn=asn,
        country=country,
        anonymised=anonymised,
        tokens=float(tokens) if isinstance(tokens, int | float) and not isinstance(tokens, bool) else 0.0,
    )


def prefix_of(ip: str) -> str:
    """The /24 of an IPv4 address or the /48 of an IPv6 address, as text ('' when neither)."""
    if ip.count(".") == 3 and ":" not in ip:
        return ip.rsplit(".", 1)[0] + ".0/24"
    if ":" in ip:
        return _prefix6(ip)
    return ""


@functools.lru_cache(maxsize=65536)
def _prefix6(ip: str) -> str:
    import ipaddress  # noqa: PLC0415

    try:
        return str(ipaddress.ip_network(ip + "/48", strict=False))
    except ValueError:
        return ""


def operations(obs: Observation) -> list[Op]:
    """The batch one request sends to the store (results come back in this order)."""
    s = obs.subject
    ops: list[Op] = [
        Distinct(s + ":ip", obs.ip, WINDOWS),
        Distinct(s + ":net", obs.prefix, WINDOWS),
        Distinct(s + ":asn", obs.asn or "?", WINDOWS),
        Count(s + ":req", 1.0, (3600, 86400)),
        Count(s + ":anon", 1.0 if obs.anonymised else 0.0, (3600, 86400)),
        Places(s + ":places", obs.country or "?", PLACES_TTL),
        Hours(s + ":hours", 7),
        Flags(s),
    ]
    acct = obs.account or s
    ops += [
        Count(acct + ":tok", obs.tokens, VOLUME_WINDOWS),
        FirstSeen(acct + ":first", FIRST_SEEN_TTL),
    ]
    if obs.account:
        ops.append(Flags(obs.account))
    return ops


def evaluate(facts: Facts, ctx: Context) -> list[Evidence]:
    """Update the key's state with this request and report what its behaviour shows."""
    store = ctx.state
    if store is None:
        return []
    obs = observe(facts, ctx.found)
    if obs is None:
        return []
    now = facts.timestamp if facts.timestamp is not None else time.time()
    results = store.apply(operations(obs), now)
    return judge(obs, results, now, ctx.behaviour, ctx.restricted)


def judge(  # noqa: PLR0915 - one pass over the features, one block per code
    obs: Observation,
    results: Sequence[Any],
    now: float,
    cfg: BehaviourConfig,
    restricted: frozenset[str],
) -> list[Evidence]:
    """Features and evidence from one batch's results (see ``operations`` for their order)."""
    ips, nets, asns, req, anon, places, (profile, active), flags, tok, first = results[:10]
    account_flags: dict[str, Any] = results[10] if len(results) > 10 else {}
    here = obs.country
    # Distinct countries per window, exactly, from the places (unknown countries don't count).
    ccs = tuple(
        len({p for p, seen in places.items() if seen > now - w and p != "?"} | ({here} if here else set()))
        for w in WINDOWS
    )
    w_net = _window_index(cfg.networks_window)
    w_cc = _window_index(cfg.countries_window)
    # Places: the farthest (lower-bound) distance to any place seen recently, and the fastest travel.
    concurrent: tuple[float, str, float] | None = None  # km, place, seconds
    travel: tuple[float, str, float, float] | None = None  # km/h, place, km, hours
    if here:
        for place, seen in places.items():
            if place in (here, "?"):
                continue
            dt = max(0.0, now - seen)
            km = distance_km(here, place)
            if km <= 0.0:
                continue
            if dt <= cfg.concurrent_seconds:
                if concurrent is None or km > concurrent[0]:
                    concurrent = (km, place, dt)
            else:
                kmh = km / (dt / 3600.0)
                if travel is None or kmh > travel[0]:
                    travel = (kmh, place, km, dt / 3600.0)
    hosting_share = anon[1] / req[1] if req[1] else 0.0
    seen_hours = (now - first) / 3600.0
    baseline = 0.0
    if seen_hours > 1.0:
        history_hours = min(seen_hours, VOLUME_WINDOWS[1] / 3600.0) - 1.0
        baseline = max(0.0, tok[1] - tok[0]) / max(history_hours, 1.0)
    features: dict[str, Any] = {
        "subject": "key" if obs.subject.startswith("k:") else "account",
        "ips_10m": ips[0],
        "ips_1h": ips[1],
        "ips_24h": ips[2],
        "networks_10m": nets[0],
        "networks_1h": nets[1],
        "networks_24h": nets[2],
        "asns_1h": asns[1],
        "asns_24h": asns[2],
        "countries_1h": ccs[1],
        "countries_24h": ccs[2],
        "requests_1h": int(req[0]),
        "requests_24h": int(req[1]),
        "hosting_share_24h": round(hosting_share, 4),
        "concurrent_km": round(concurrent[0], 1) if concurrent else 0.0,
        "travel_kmh": round(travel[0], 1) if travel else 0.0,
        "active_hours_24h": active,
        "tokens_1h": tok[0],
        "tokens_hourly_baseline": round(baseline, 1),
        "flags": sorted(set(flags) | set(account_flags)),
    }
    out = [
        Evidence(
            signal=SIGNAL,
            code="KEY_ACTIVITY",
            value=features,
            detail=f"{features['subject']} seen from {nets[1]} networks and {ccs[2]} countries; "
            f"{int(req[1])} requests in 24 h, active {active} of 24 hours",
        )
    ]
    if nets[w_net] > cfg.networks_max or asns[w_net] > cfg.asns_max:
        out.append(
            Evidence(
                signal=SIGNAL,
                code="KEY_MANY_NETWORKS",
                value={"networks": nets[w_net], "asns": asns[w_net], "window_s": WINDOWS[w_net],
                       "networks_max": cfg.networks_max, "asns_max": cfg.asns_max},
                confidence=min(1.0, 0.5 + 0.5 * max(nets[w_net] / max(cfg.networks_max, 1),
                                                    asns[w_net] / max(cfg.asns_max, 1)) / 4),
                detail=f"used from {nets[w_net]} networks in {asns[w_net]} ASNs within {_span(WINDOWS[w_net])}",
            )
        )  # fmt: skip
    if ccs[w_cc] > cfg.countries_max:
        out.append(
            Evidence(
                signal=SIGNAL,
                code="KEY_MANY_COUNTRIES",
                value={"countries": ccs[w_cc], "window_s": WINDOWS[w_cc], "max": cfg.countries_max},
                confidence=min(1.0, 0.6 + 0.1 * (ccs[w_cc] - cfg.countries_max)),
                detail=f"used from {ccs[w_cc]} countries within {_span(WINDOWS[w_cc])}",
            )
        )
    if concurrent is not None and concurrent[0] >= cfg.concurrent_km:
        km, place, dt = concurrent
        hit = sorted({here, place} & restricted)
        out.append(
            Evidence(
                signal=SIGNAL,
                code="KEY_CONCURRENT_DISTANT",
                value={"countries": [place, here], "km": round(km, 1), "seconds": round(dt, 1), "restricted": hit},
                confidence=0.9 if km >= 2 * cfg.concurrent_km else 0.75,
                detail=f"used from {place} and {here}, at least {km:,.0f} km apart, {dt:.0f} s apart"
                + (f" (restricted: {', '.join(hit)})" if hit else ""),
            )
        )
    if travel is not None and travel[0] > cfg.travel_kmh:
        kmh, place, km, hours = travel
        hit = sorted({here, place} & restricted)
        out.append(
            Evidence(
                signal=SIGNAL,
                code="KEY_IMPOSSIBLE_TRAVEL",
                value={"countries": [place, here], "km": round(km, 1), "hours": round(hours, 3),
                       "kmh": round(kmh, 1), "restricted": hit},
                confidence=min(0.95, 0.6 + 0.1 * kmh / cfg.travel_kmh),
                detail=f"{place} then {here}: at least {km:,.0f} km in {hours:.2f} h ({kmh:,.0f} km/h)"
                + (f" (restricted: {', '.join(hit)})" if hit else ""),
            )
        )  # fmt: skip
    if active >= cfg.round_the_clock_hours and req[1] >= cfg.round_the_clock_min_requests:
        out.append(
            Evidence(
                signal=SIGNAL,
                code="KEY_ROUND_THE_CLOCK",
                value={"active_hours": active, "requests_24h": int(req[1])},
                confidence=0.8,
                detail=f"active in {active} of the last 24 hours ({int(req[1])} requests)",
            )
        )
    offset = None
    if here and hosting_share >= cfg.relay_hosting_share and sum(profile) >= cfg.relay_min_requests:
        offset = profile_offset(profile)  # only where it can matter: it is the signal's dearest step
    if offset is not None:
        fits = [
            cc
            for cc in sorted(restricted)
            if country_offsets(cc) and _gap(offset[0], country_offsets(cc)) <= FITS_HOURS
        ]
        gap = _gap(offset[0], country_offsets(here))
        if fits and country_offsets(here) and gap >= cfg.relay_offset_gap_hours:
            out.append(
                Evidence(
                    signal=SIGNAL,
                    code="KEY_RELAY_SHAPE",
                    value={"hosting_share": round(hosting_share, 3), "utc_offset_h": offset[0],
                           "night_share": round(offset[1], 3), "address_country": here,
                           "offset_gap_h": gap, "fits": fits},
                    confidence=0.8,
                    detail=f"{hosting_share:.0%} of requests from hosting/VPN ranges in {here}, but the daily "
                    f"rhythm fits UTC{offset[0]:+g} ({', '.join(fits)}), {gap:g} h off the addresses' clock",
                )
            )  # fmt: skip
    if (
        seen_hours >= cfg.volume_min_history_hours
        and tok[0] >= cfg.volume_min_tokens
        and tok[0] >= cfg.volume_ratio * max(baseline, 1.0)
    ):
        out.append(
            Evidence(
                signal=SIGNAL,
                code="ACCOUNT_VOLUME_SPIKE",
                value={"tokens_1h": tok[0], "baseline_hourly": round(baseline, 1),
                       "ratio": round(tok[0] / max(baseline, 1.0), 1), "max_ratio": cfg.volume_ratio},
                confidence=0.7,
                detail=f"{tok[0]:,.0f} tokens in the last hour, {tok[0] / max(baseline, 1.0):,.0f}x the "
                "account's hourly average",
            )
        )  # fmt: skip
    all_flags = {**account_flags, **flags}
    if all_flags:
        top = max((float(v.get("score", 0.5)) for v in all_flags.values()), default=0.5)
        out.append(
            Evidence(
                signal=SIGNAL,
                code="KEY_FLAGGED",
                value={code: dict(v) for code, v in sorted(all_flags.items())},
                confidence=max(0.5, min(1.0, top)),
                detail="flagged by batch analytics: " + ", ".join(sorted(all_flags)),
            )
        )
    return out


def _window_index(window: int) -> int:
    """The index of the state window that covers ``window`` seconds (the smallest one that does)."""
    for i, w in enumerate(WINDOWS):
        if window <= w:
            return i
    return len(WINDOWS) - 1


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds // 60} min"


# -- where: distances between countries -----------------------------------------------------

_dist_lock = threading.Lock()
_dist_cache: dict[tuple[str, str], float] = {}


def distance_km(a: str, b: str) -> float:
    """A lower bound on the distance between anyone in country ``a`` and anyone in ``b``: the
    shortest great-circle distance between their populated places (0 when unknown)."""
    if a == b:
        return 0.0
    key = (a, b) if a < b else (b, a)
    got = _dist_cache.get(key)
    if got is not None:
        return got
    value = _min_distance(*key)
    with _dist_lock:
        _dist_cache[key] = value
    return value


def _min_distance(a: str, b: str) -> float:
    from geowarden.latency.model import EARTH_RADIUS_KM  # noqa: PLC0415
    from geowarden.latency.places import places  # noqa: PLC0415 - loaded once, on first use

    p = places()
    ra, rb = p.by_country.get(a), p.by_country.get(b)
    if ra is None or rb is None or not len(ra) or not len(rb):
        return 0.0
    ra = ra[np.argsort(-p.population[ra], kind="stable")[:PLACES_PER_COUNTRY]]
    rb = rb[np.argsort(-p.population[rb], kind="stable")[:PLACES_PER_COUNTRY]]
    dots = np.clip(p.points.xyz[ra] @ p.points.xyz[rb].T, -1.0, 1.0)
    return float(EARTH_RADIUS_KM * math.acos(float(dots.max())))


# -- when: daily rhythm -----------------------------------------------------------------------

NIGHT_HOURS = 6  # the quietest run of hours in a person's day
NIGHT_CENTRE_LOCAL = 3.0  # its middle, local time
DAY_CENTRE_LOCAL = 14.0  # the middle of a person's activity, local time
FITS_HOURS = 1.5  # how near an inferred offset must be to a country's to fit it


def _circular_mean(hours: Sequence[float], weights: Sequence[float]) -> float:
    x = sum(w * math.cos(h * math.pi / 12.0) for h, w in zip(hours, weights, strict=True))
    y = sum(w * math.sin(h * math.pi / 12.0) for h, w in zip(hours, weights, strict=True))
    return (math.atan2(y, x) * 12.0 / math.pi) % 24.0


def _wrap(hours: float) -> float:
    """An offset in hours on (-12, 12]."""
    return -((12.0 - hours) % 24.0 - 12.0)


def profile_offset(profile: Sequence[int], max_night_share: float = 0.05) -> tuple[float, float] | None:
    """The UTC offset a 24-hour profile (requests per UTC hour) implies, or None when it has no
    clear night (round the clock, or no traffic): ``(offset hours, share of requests in the
    quietest hours)``. Two readings are averaged: the middle of the quietest hours is taken as
    03:00 local time, and the middle of the activity as 14:00."""
    total = sum(profile)
    if total <= 0:
        return None
    sums = [sum(profile[(start + i) % 24] for i in range(NIGHT_HOURS)) for start in range(24)]
    quiet = min(sums)
    share = quiet / total
    if share > max_night_share:
        return None
    centres = [(start + NIGHT_HOURS / 2.0) % 24 for start in range(24) if sums[start] == quiet]
    night = _circular_mean(centres, [1.0] * len(centres))
    day = _circular_mean([h + 0.5 for h in range(24)], [float(n) for n in profile])
    by_night = _wrap(NIGHT_CENTRE_LOCAL - night)
    by_day = _wrap(DAY_CENTRE_LOCAL - day)
    offset = _wrap(_circular_mean([by_night % 24.0, by_day % 24.0], [1.0, 1.0]))
    return round(offset * 2.0) / 2.0, share


@functools.lru_cache(maxsize=512)
def country_offsets(cc: str) -> tuple[float, ...]:
    """The UTC offsets (hours, standard and summer time) of a country's time zones."""
    from geowarden.signals.client import zones  # noqa: PLC0415

    year = datetime.now().year
    winter, summer = datetime(year, 1, 15), datetime(year, 7, 15)
    out: set[float] = set()
    for zone, countries in zones().countries.items():
        if cc not in countries:
            continue
        try:
            tz = ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            continue
        for moment in (winter, summer):
            delta = tz.utcoffset(moment)
            if delta is not None:
                out.add(delta.total_seconds() / 3600.0)
    return tuple(sorted(out))


def _gap(offset: float, offsets: Sequence[float]) -> float:
    """Hours between an offset and the nearest of ``offsets`` (on the 24-hour circle)."""
    if not offsets:
        return 0.0
    return min(min(abs(offset - o) % 24.0, 24.0 - abs(offset - o) % 24.0) for o in offsets)
