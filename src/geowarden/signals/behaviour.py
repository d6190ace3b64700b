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

Locations are countries (the address's, as the ip signal placed it); distances between them are
lower bounds (``signals.geo``), and clocks are read from the daily rhythm (``signals.rhythm``).
The features of one request are computed once (``Features``); each code then has its own rule,
a function of the features and the thresholds (``RULES``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from geowarden.model import Evidence, Facts
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings
from geowarden.signals.geo import distance_km
from geowarden.signals.keystate import VOLUME_WINDOWS, WINDOWS, Observation, observe, operations
from geowarden.signals.rhythm import FITS_HOURS, country_offsets, gap_hours, profile_offset
from geowarden.signals.thresholds import BehaviourConfig

NAME = "key"

CODES: dict[str, tuple[str, str]] = {
    "KEY_ACTIVITY": (
        NAME,
        "Every behaviour feature of the key and its account after this request (distinct networks, "
        "countries, places, hours, volumes); informational, and what the policy's `key` variable reads.",
    ),
    "KEY_MANY_NETWORKS": (
        NAME,
        "The key was used from more distinct networks (/24 or /48 prefixes) or ASNs in the window "
        "than the policy allows; value: counts, window, threshold.",
    ),
    "KEY_MANY_COUNTRIES": (
        NAME,
        "The key was used from more distinct countries in the window than the policy allows; "
        "value: count, window, threshold.",
    ),
    "KEY_CONCURRENT_DISTANT": (
        NAME,
        "The key was used from places at least the policy's distance apart within seconds of each "
        "other: more than one user; value: countries, km (lower bound), seconds, restricted places.",
    ),
    "KEY_IMPOSSIBLE_TRAVEL": (
        NAME,
        "Between two uses of the key the implied speed exceeds any aircraft's; value: countries, "
        "km (lower bound), hours, km/h, restricted places.",
    ),
    "KEY_ROUND_THE_CLOCK": (
        NAME,
        "The key was active in nearly every hour of the last day: a relay's or a service's shape, "
        "not a person's; value: active hours, requests.",
    ),
    "KEY_RELAY_SHAPE": (
        NAME,
        "The key's traffic comes mostly from hosting/VPN ranges and its daily rhythm fits a "
        "restricted country's clock, not its addresses'; value: hosting share, inferred UTC offset, "
        "the countries it fits.",
    ),
    "KEY_RESTRICTED_CLIENT": (
        NAME,
        "Over the last day, most of the key's requests (at least the policy's count and share) came through "
        "hosting, VPN, proxy or Tor exits from clients reporting a restricted time zone or language; value: "
        "counts, share, thresholds.",
    ),
    "ACCOUNT_VOLUME_SPIKE": (
        NAME,
        "The account's token volume in the last hour is many times its own hourly average; value: "
        "tokens, baseline, ratio.",
    ),
    "KEY_FLAGGED": (
        NAME,
        "Batch analytics flagged this key or its account (e.g. a shared key, an account cluster or "
        "a campaign); value: the findings' kinds, scores and subjects.",
    ),
}


def evaluate(facts: Facts, ctx: SignalContext) -> list[Evidence]:
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


@dataclass(frozen=True, slots=True)
class Features:
    """Everything one request's state batch says about the key, computed once for every rule."""

    obs: Observation
    cfg: BehaviourConfig
    restricted: frozenset[str]
    ips: tuple[int, int, int]  # distinct addresses per window (``WINDOWS``)
    nets: tuple[int, int, int]  # distinct /24-/48 networks per window (``WINDOWS``)
    asns: tuple[int, int, int]
    ccs: tuple[int, int, int]  # distinct countries per window
    requests: tuple[float, float]  # 1 h, 24 h
    hosting_share: float  # of the last day's requests
    profile: Sequence[int]  # requests per UTC hour over 7 days
    active: int  # active hours of the last 24
    tokens: tuple[float, float]  # 1 h, 7 days
    baseline: float  # the account's hourly token average before the last hour
    seen_hours: float  # since the account was first seen
    concurrent: tuple[float, str, float] | None  # farthest place within the concurrency window: km, place, s
    travel: tuple[float, str, float, float] | None  # fastest implied travel: km/h, place, km, hours
    flags: dict[str, Any]  # batch-analytics flags of the key and its account
    restricted_client: float = 0.0  # requests of the last 24 h with a restricted-looking client

    @property
    def here(self) -> str:
        return self.obs.country


def features(
    obs: Observation, results: Sequence[Any], now: float, cfg: BehaviourConfig, restricted: frozenset[str]
) -> Features:
    """The features of one batch's results (see ``operations`` for their order)."""
    ips, nets, asns, req, anon, places, (profile, active), flags, tok, first, rclient = results[:11]
    account_flags: dict[str, Any] = results[11] if len(results) > 11 else {}
    here = obs.country
    # Distinct countries per window, exactly, from the places (unknown countries don't count).
    ccs = tuple(
        len({p for p, seen in places.items() if seen > now - w and p != "?"} | ({here} if here else set()))
        for w in WINDOWS
    )
    # Places: the farthest (lower-bound) distance to any place seen recently, and the fastest travel.
    concurrent: tuple[float, str, float] | None = None
    travel: tuple[float, str, float, float] | None = None
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
    seen_hours = (now - first) / 3600.0
    baseline = 0.0
    if seen_hours > 1.0:
        history_hours = min(seen_hours, VOLUME_WINDOWS[1] / 3600.0) - 1.0
        baseline = max(0.0, tok[1] - tok[0]) / max(history_hours, 1.0)
    return Features(
        obs=obs,
        cfg=cfg,
        restricted=restricted,
        ips=ips,
        nets=nets,
        asns=asns,
        ccs=ccs,  # type: ignore[arg-type]  # three windows, three counts
        requests=(req[0], req[1]),
        hosting_share=anon[1] / req[1] if req[1] else 0.0,
        profile=profile,
        active=active,
        tokens=(tok[0], tok[1]),
        baseline=baseline,
        seen_hours=seen_hours,
        concurrent=concurrent,
        travel=travel,
        flags={**account_flags, **flags},
        restricted_client=float(rclient[1]),
    )


def judge(
    obs: Observation, results: Sequence[Any], now: float, cfg: BehaviourConfig, restricted: frozenset[str]
) -> list[Evidence]:
    """``KEY_ACTIVITY`` with every feature, then the evidence of every rule that fires."""
    f = features(obs, results, now, cfg, restricted)
    out = [activity(f)]
    for rule in RULES:
        found = rule(f)
        if found is not None:
            out.append(found)
    return out


def activity(f: Features) -> Evidence:
    """``KEY_ACTIVITY``: every feature, always (what the policy's ``key`` variable reads)."""
    value: dict[str, Any] = {
        "subject": "key" if f.obs.subject.startswith("k:") else "account",
        "ips_10m": f.ips[0],
        "ips_1h": f.ips[1],
        "ips_24h": f.ips[2],
        "networks_10m": f.nets[0],
        "networks_1h": f.nets[1],
        "networks_24h": f.nets[2],
        "asns_1h": f.asns[1],
        "asns_24h": f.asns[2],
        "countries_1h": f.ccs[1],
        "countries_24h": f.ccs[2],
        "requests_1h": int(f.requests[0]),
        "requests_24h": int(f.requests[1]),
        "hosting_share_24h": round(f.hosting_share, 4),
        "concurrent_km": round(f.concurrent[0], 1) if f.concurrent else 0.0,
        "travel_kmh": round(f.travel[0], 1) if f.travel else 0.0,
        "active_hours_24h": f.active,
        "tokens_1h": f.tokens[0],
        "tokens_hourly_baseline": round(f.baseline, 1),
        "restricted_client_24h": int(f.restricted_client),
        "flags": sorted(f.flags),
    }
    return Evidence(
        signal=NAME,
        code="KEY_ACTIVITY",
        value=value,
        detail=f"{value['subject']} seen from {f.nets[1]} networks and {f.ccs[2]} countries; "
        f"{int(f.requests[1])} requests in 24 h, active {f.active} of 24 hours",
    )


def many_networks(f: Features) -> Evidence | None:
    """``KEY_MANY_NETWORKS``: more networks or ASNs in the window than the policy allows."""
    cfg = f.cfg
    w = _window_index(cfg.networks_window)
    nets, asns = f.nets[w], f.asns[w]
    if nets <= cfg.networks_max and asns <= cfg.asns_max:
        return None
    return Evidence(
        signal=NAME,
        code="KEY_MANY_NETWORKS",
        value={"networks": nets, "asns": asns, "window_s": WINDOWS[w],
               "networks_max": cfg.networks_max, "asns_max": cfg.asns_max},
        confidence=min(1.0, 0.5 + 0.5 * max(nets / max(cfg.networks_max, 1), asns / max(cfg.asns_max, 1)) / 4),
        detail=f"used from {nets} networks in {asns} ASNs within {_span(WINDOWS[w])}",
    )  # fmt: skip


def many_countries(f: Features) -> Evidence | None:
    """``KEY_MANY_COUNTRIES``: more countries in the window than the policy allows."""
    cfg = f.cfg
    w = _window_index(cfg.countries_window)
    if f.ccs[w] <= cfg.countries_max:
        return None
    return Evidence(
        signal=NAME,
        code="KEY_MANY_COUNTRIES",
        value={"countries": f.ccs[w], "window_s": WINDOWS[w], "max": cfg.countries_max},
        confidence=min(1.0, 0.6 + 0.1 * (f.ccs[w] - cfg.countries_max)),
        detail=f"used from {f.ccs[w]} countries within {_span(WINDOWS[w])}",
    )


def concurrent_distant(f: Features) -> Evidence | None:
    """``KEY_CONCURRENT_DISTANT``: used from places far apart within seconds of each other."""
    if f.concurrent is None or f.concurrent[0] < f.cfg.concurrent_km:
        return None
    km, place, dt = f.concurrent
    hit = sorted({f.here, place} & f.restricted)
    return Evidence(
        signal=NAME,
        code="KEY_CONCURRENT_DISTANT",
        value={"countries": [place, f.here], "km": round(km, 1), "seconds": round(dt, 1), "restricted": hit},
        confidence=0.9 if km >= 2 * f.cfg.concurrent_km else 0.75,
        detail=f"used from {place} and {f.here}, at least {km:,.0f} km apart, {dt:.0f} s apart"
        + (f" (restricted: {', '.join(hit)})" if hit else ""),
    )


def impossible_travel(f: Features) -> Evidence | None:
    """``KEY_IMPOSSIBLE_TRAVEL``: the implied speed between two uses exceeds any aircraft's."""
    if f.travel is None or f.travel[0] <= f.cfg.travel_kmh:
        return None
    kmh, place, km, hours = f.travel
    hit = sorted({f.here, place} & f.restricted)
    return Evidence(
        signal=NAME,
        code="KEY_IMPOSSIBLE_TRAVEL",
        value={"countries": [place, f.here], "km": round(km, 1), "hours": round(hours, 3),
               "kmh": round(kmh, 1), "restricted": hit},
        confidence=min(0.95, 0.6 + 0.1 * kmh / f.cfg.travel_kmh),
        detail=f"{place} then {f.here}: at least {km:,.0f} km in {hours:.2f} h ({kmh:,.0f} km/h)"
        + (f" (restricted: {', '.join(hit)})" if hit else ""),
    )  # fmt: skip


def round_the_clock(f: Features) -> Evidence | None:
    """``KEY_ROUND_THE_CLOCK``: active in nearly every hour of the last day, with enough requests."""
    if f.active < f.cfg.round_the_clock_hours or f.requests[1] < f.cfg.round_the_clock_min_requests:
        return None
    return Evidence(
        signal=NAME,
        code="KEY_ROUND_THE_CLOCK",
        value={"active_hours": f.active, "requests_24h": int(f.requests[1])},
        confidence=0.8,
        detail=f"active in {f.active} of the last 24 hours ({int(f.requests[1])} requests)",
    )


def relay_shape(f: Features) -> Evidence | None:
    """``KEY_RELAY_SHAPE``: mostly hosting/VPN traffic whose daily rhythm fits a restricted
    country's clock and not the addresses' (the profile is read only where it can matter: it is
    the signal's dearest step)."""
    cfg, here = f.cfg, f.here
    if not here or f.hosting_share < cfg.relay_hosting_share or sum(f.profile) < cfg.relay_min_requests:
        return None
    offset = profile_offset(f.profile)
    if offset is None:
        return None
    fits = [cc for cc in sorted(f.restricted) if country_offsets(cc) and gap_hours(offset[0], country_offsets(cc))
            <= FITS_HOURS]  # fmt: skip
    gap = gap_hours(offset[0], country_offsets(here))
    if not fits or not country_offsets(here) or gap < cfg.relay_offset_gap_hours:
        return None
    return Evidence(
        signal=NAME,
        code="KEY_RELAY_SHAPE",
        value={"hosting_share": round(f.hosting_share, 3), "utc_offset_h": offset[0],
               "night_share": round(offset[1], 3), "address_country": here, "offset_gap_h": gap, "fits": fits},
        confidence=0.8,
        detail=f"{f.hosting_share:.0%} of requests from hosting/VPN ranges in {here}, but the daily "
        f"rhythm fits UTC{offset[0]:+g} ({', '.join(fits)}), {gap:g} h off the addresses' clock",
    )  # fmt: skip


def restricted_client(f: Features) -> Evidence | None:
    """``KEY_RESTRICTED_CLIENT``: persistently, not once, the key's clients report a restricted
    time zone or language behind hosting, VPN, proxy or Tor exits (a share over many requests; an
    expat at home on a residential line is not counted)."""
    cfg, n, hits = f.cfg, f.requests[1], f.restricted_client
    if hits < max(cfg.restricted_client_min_requests, 1) or hits < cfg.restricted_client_share * n:
        return None
    return Evidence(
        signal=NAME,
        code="KEY_RESTRICTED_CLIENT",
        value={"requests_24h": int(n), "restricted_client_24h": int(hits), "share": round(hits / n, 3),
               "min_requests": cfg.restricted_client_min_requests, "min_share": cfg.restricted_client_share},
        confidence=min(0.95, 0.6 + 0.35 * hits / n),
        detail=f"{int(hits)} of the last {int(n)} requests came through anonymising exits from clients "
        "reporting a restricted time zone or language",
    )  # fmt: skip


def volume_spike(f: Features) -> Evidence | None:
    """``ACCOUNT_VOLUME_SPIKE``: the last hour's tokens many times the account's own average."""
    cfg, tokens, base = f.cfg, f.tokens[0], max(f.baseline, 1.0)
    if f.seen_hours < cfg.volume_min_history_hours or tokens < max(cfg.volume_min_tokens, cfg.volume_ratio * base):
        return None
    return Evidence(
        signal=NAME,
        code="ACCOUNT_VOLUME_SPIKE",
        value={"tokens_1h": tokens, "baseline_hourly": round(f.baseline, 1), "ratio": round(tokens / base, 1),
               "max_ratio": cfg.volume_ratio},
        confidence=0.7,
        detail=f"{tokens:,.0f} tokens in the last hour, {tokens / base:,.0f}x the account's hourly average",
    )  # fmt: skip


def flagged(f: Features) -> Evidence | None:
    """``KEY_FLAGGED``: batch analytics flagged the key or its account."""
    if not f.flags:
        return None
    top = max((float(v.get("score", 0.5)) for v in f.flags.values()), default=0.5)
    return Evidence(
        signal=NAME,
        code="KEY_FLAGGED",
        value={code: dict(v) for code, v in sorted(f.flags.items())},
        confidence=max(0.5, min(1.0, top)),
        detail="flagged by batch analytics: " + ", ".join(sorted(f.flags)),
    )


#: One rule per code, in the order their evidence is reported.
RULES: tuple[Callable[[Features], Evidence | None], ...] = (
    many_networks,
    many_countries,
    concurrent_distant,
    impossible_travel,
    round_the_clock,
    relay_shape,
    restricted_client,
    volume_spike,
    flagged,
)


def _window_index(window: int) -> int:
    """The index of the state window that covers ``window`` seconds (the smallest one that does)."""
    for i, w in enumerate(WINDOWS):
        if window <= w:
            return i
    return len(WINDOWS) - 1


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds // 60} min"


_KEY_FIELDS = (
    ("networks_1h", 0), ("networks_24h", 0), ("asns_1h", 0), ("countries_1h", 0), ("countries_24h", 0),
    ("requests_24h", 0), ("hosting_share_24h", 0.0), ("concurrent_km", 0.0), ("travel_kmh", 0.0),
    ("active_hours_24h", 0), ("tokens_1h", 0.0), ("restricted_client_24h", 0),
)  # fmt: skip


_UNCHECKED: dict[str, Any] = {"checked": False, **dict(_KEY_FIELDS)}


class BehaviourSignal(BaseSignal):
    """The ``key`` signal and its CEL variable ``key``: ``checked``, the counters of
    ``KEY_ACTIVITY`` (zero when unknown), ``flags`` and ``restricted_places`` (restricted
    countries behind a concurrency or travel finding)."""

    name = NAME
    codes = meanings(CODES)
    variable = "key"

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        return evaluate(facts, ctx)

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:  # noqa: ARG002 - the contract's signature
        if "KEY_ACTIVITY" not in found.codes:  # no key state for this request (most requests)
            return {**_UNCHECKED, "flags": [], "restricted_places": []}
        activity = found.mapping("KEY_ACTIVITY")
        places: set[str] = set()
        for e in found.evidence:
            if e.code in ("KEY_CONCURRENT_DISTANT", "KEY_IMPOSSIBLE_TRAVEL") and isinstance(e.value, dict):
                places.update(str(c) for c in e.value.get("restricted", []))
        out: dict[str, Any] = {"checked": bool(activity)}
        for name, zero in _KEY_FIELDS:
            value = activity.get(name, zero)
            out[name] = type(zero)(value) if isinstance(value, int | float) else zero
        out["flags"] = [str(f) for f in activity.get("flags", [])]
        out["restricted_places"] = sorted(places)
        return out


SIGNAL = BehaviourSignal()
