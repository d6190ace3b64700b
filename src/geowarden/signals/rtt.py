"""The latency (``rtt``) signal: what measured round-trip times say about a location claim.

A pure function of the facts (no I/O; the populated-places table is loaded once per process
and cached). It checks, against ``facts.rtt``:

- the IP country (the network signal's ``IP_COUNTRY``, ``ctx.ip_country``);
- a declared location in ``facts.claimed`` ("CC" or ``(lat, lon)``), if any;

and reports ``RTT_TOO_FAR_FROM_CLAIMED`` for each claim the speed of light rules out,
``RTT_INCONCLUSIVE`` for each claim the measurement does not settle (no evidence either way: the
policy's ``rtt.too_far`` stays false) and one ``RTT_REGION`` with where the client can be.
With ``facts.rtt_tcp_ms`` (edge TCP RTTs) and ``facts.rtt_app_ms`` (application-level RTTs of
the same client), it also looks for a tunnel (``RTT_TUNNEL_GAP``). Measurements that were given but cannot be used give
``RTT_INSUFFICIENT``; no measurement at all gives no evidence (unknown is not false).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

from geowarden.latency.model import Calibration
from geowarden.latency.places import places
from geowarden.latency.rule import FALSE, NULL, confidence
from geowarden.latency.tunnel import DEFAULT_CONFIG, TunnelConfig, tunnel_gap
from geowarden.latency.verify import (
    DEFAULT_TOLERANCE,
    INCONCLUSIVE,
    INSUFFICIENT,
    PLACE_SLACK_KM,
    REGION,
    TOO_FAR,
    WHY_EMPTY,
    WHY_FEW,
    WHY_HONEST,
    Claimed,
    ClaimedCountry,
    ClaimedPoint,
    Discs,
    Tolerance,
    assess,
    discs,
    region,
)
from geowarden.model import Evidence, Facts, RTTSample
from geowarden.signals.base import BaseSignal, Found, SignalContext, meanings

NAME = "rtt"

#: Evidence codes of the latency signal, with their one-line meanings.
CODES: dict[str, tuple[str, str]] = {
    "RTT_TOO_FAR_FROM_CLAIMED": (
        NAME,
        "Measured round-trip times make the claimed location physically impossible: it lies outside "
        "the region the speed of light allows (value: the claim and violation_km).",
    ),
    "RTT_REGION": (
        NAME,
        "Where the client can physically be, given the round-trip times (countries, largest cities, "
        "centroid); informational.",
    ),
    "RTT_TUNNEL_GAP": (
        NAME,
        "Application-level RTTs consistently exceed the edge TCP RTT beyond last-mile jitter: TCP "
        "terminates at a relay (proxy or tunnel) nearer the edge than the client.",
    ),
    "RTT_INSUFFICIENT": (
        NAME,
        "RTT measurements were given but too few were usable to verify a location or a tunnel.",
    ),
    "RTT_INCONCLUSIVE": (
        NAME,
        "The round-trip times neither support nor refute a location claim (too few landmarks, discs "
        "that contradict each other, or violations within what honest routes produce): no evidence.",
    ),
}


def claimed_from_value(value: Any) -> Claimed | None:
    """A claim from ``"CC"`` or ``[lat, lon]``; None when the value is neither."""
    if isinstance(value, str):
        code = value.strip().upper()
        return ClaimedCountry(code) if len(code) == 2 and code.isalpha() else None
    if isinstance(value, list | tuple) and len(value) == 2:
        lat, lon = value
        numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (lat, lon))
        if numbers and -90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0:
            return ClaimedPoint(float(lat), float(lon))
    return None


def _describe(claimed: Claimed) -> str:
    if isinstance(claimed, ClaimedCountry):
        return claimed.code
    return f"({claimed.lat:.3f}, {claimed.lon:.3f})"


def evaluate(
    facts: Facts,
    ctx: SignalContext | None = None,
    claimed_country: str | None = None,
    *,
    calibration: Calibration | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    tunnel_config: TunnelConfig = DEFAULT_CONFIG,
) -> list[Evidence]:
    """Evidence from ``facts.rtt`` (and the optional tunnel measurements ``rtt_tcp_ms``/``rtt_app_ms``)."""
    out: list[Evidence] = []
    if facts.rtt:
        out.extend(_location(facts, ctx, claimed_country, calibration, tolerance))
    tcp, app = facts.rtt_tcp_ms, facts.rtt_app_ms
    if app:  # the edge sends its TCP RTT with every request: alone, it is no tunnel measurement
        out.extend(_tunnel(_floats(tcp), _floats(app), tunnel_config))
    return out


def _floats(value: Any) -> list[float]:
    if not isinstance(value, list | tuple):
        return []
    return [float(x) for x in value if isinstance(x, int | float) and not isinstance(x, bool)]


def _claims(facts: Facts, claimed_country: str | None) -> list[tuple[str, Claimed]]:
    claims: list[tuple[str, Claimed]] = []
    known = places().by_country
    if claimed_country:
        c = claimed_from_value(claimed_country)
        if isinstance(c, ClaimedCountry) and c.code in known:
            claims.append(("ip", c))
    declared = claimed_from_value(facts.claimed)
    fresh = declared is not None and all(declared != c for _, c in claims)
    if declared is not None and fresh and (not isinstance(declared, ClaimedCountry) or declared.code in known):
        claims.append(("declared", declared))
    return claims


#: The region of one edge RTT is remembered per (landmark, RTT rounded up to this step): most
#: requests carry one RTT from one of a few dozen pops, and the region is a scan of every populated
#: place (1-7 ms). Rounding up only widens the disc (by at most ~50 km), so the region can only list
#: more places, never fewer; claims are still assessed on the exact RTT.
REGION_STEP_MS = 0.5
REGION_CACHE_SIZE = 4096
_REGIONS: dict[tuple[float, float, float, int, Tolerance], tuple[Calibration | None, dict[str, Any]]] = {}


def _region(
    samples: Sequence[RTTSample], d: Discs, calibration: Calibration | None, tolerance: Tolerance
) -> dict[str, Any]:
    """``region`` of the discs; for a single usable RTT, from the cache above (read-only to callers)."""
    if d.n != 1 or len(samples) != 1:
        return region(d, tolerance)
    s = samples[0]
    ms = math.ceil(s.ms / REGION_STEP_MS) * REGION_STEP_MS
    key = (float(s.lat), float(s.lon), ms, id(calibration), tolerance)
    hit = _REGIONS.get(key)
    if hit is not None and hit[0] is calibration:
        return hit[1]
    reg = region(discs((RTTSample(lat=s.lat, lon=s.lon, ms=ms),), calibration), tolerance)
    if len(_REGIONS) >= REGION_CACHE_SIZE:
        with contextlib.suppress(StopIteration, RuntimeError):  # another thread may have taken the oldest first
            _REGIONS.pop(next(iter(_REGIONS)), None)
    _REGIONS[key] = (calibration, reg)
    return reg


def _location(
    facts: Facts,
    ctx: SignalContext | None,
    claimed_country: str | None,
    calibration: Calibration | None,
    tolerance: Tolerance,
) -> list[Evidence]:
    d = discs(facts.rtt, calibration)
    if d.n == 0:
        return [
            Evidence(
                signal=NAME,
                code=INSUFFICIENT,
                value={"what": "location", "samples": len(facts.rtt), "usable": 0},
                confidence=1.0,
                detail=f"none of the {len(facts.rtt)} RTT samples is usable (position out of range or RTT not > 0)",
            )
        ]
    out: list[Evidence] = []
    reg = _region(facts.rtt, d, calibration, tolerance)
    for source, claimed in _claims(facts, claimed_country):
        a = assess(d, claimed, tolerance, PLACE_SLACK_KM)
        answer, why = a.answer, WHY_HONEST
        if answer == FALSE and reg.get("empty"):
            answer, why = NULL, WHY_EMPTY
        elif answer == NULL and d.n < tolerance.min_discs:
            why = WHY_FEW
        if answer == FALSE:
            out.append(
                Evidence(
                    signal=NAME,
                    code=TOO_FAR,
                    value={"claimed": claimed.to_json(), "source": source, "violation_km": round(a.violation_km, 1)},
                    confidence=confidence(answer, a.score, d.total_weight, tolerance),
                    detail=f"the {source} location {_describe(claimed)} is {a.violation_km:,.0f} km beyond what "
                    f"RTTs from {d.n} landmarks allow"
                    + (", landmarks near it answered far slower than honest clients there" if a.ceiling > 0 else ""),
                )
            )
        elif answer == NULL:
            out.append(
                Evidence(
                    signal=NAME,
                    code=INCONCLUSIVE,
                    value={"claimed": claimed.to_json(), "source": source, "why": why, "score": round(a.score, 3)},
                    confidence=0.5,
                    detail=f"RTTs from {d.n} landmarks neither support nor refute the {source} location "
                    f"{_describe(claimed)}: {why}",
                )
            )
    countries: list[str] = reg.get("countries", [])
    value: dict[str, Any] = {
        "countries": countries,
        "centroid": reg.get("centroid"),
        "radius_km": reg.get("radius_km"),
        "landmarks": d.n,
        "consistent": reg.get("consistent", False),
    }
    if ctx is not None:
        value["restricted"] = sorted(set(countries) & ctx.restricted)
    where = ", ".join(countries[:8]) + (f" and {len(countries) - 8} more" if len(countries) > 8 else "")
    out.append(
        Evidence(
            signal=NAME,
            code=REGION,
            value=value,
            confidence=1.0 if reg.get("consistent") else 0.5,
            detail=f"RTTs from {d.n} landmarks place the client within {reg.get('radius_km') or 0:,.0f} km of "
            f"{reg.get('centroid')}: {where or 'nowhere consistent'}",
        )
    )
    return out


def _tunnel(tcp: Sequence[float], app: Sequence[float], config: TunnelConfig) -> list[Evidence]:
    res = tunnel_gap(tcp, app, config)
    if not res.sufficient:
        return [
            Evidence(
                signal=NAME,
                code=INSUFFICIENT,
                value={"what": "tunnel", "tcp": res.n_tcp, "app": res.n_app},
                confidence=1.0,
                detail=f"tunnel check needs >= {config.min_tcp} TCP and >= {config.min_app} application RTTs "
                f"(got {res.n_tcp} and {res.n_app} usable)",
            )
        ]
    if not res.tunnel:
        return []
    strength = min(1.0, res.excess_ms / max(res.threshold_ms, 1.0))
    return [
        Evidence(
            signal=NAME,
            code="RTT_TUNNEL_GAP",
            value=res.to_dict(),
            confidence=round(0.6 + 0.35 * strength, 4),
            detail=f"application RTTs exceed the edge TCP RTT by {res.gap_ms:.0f} ms (threshold "
            f"{res.threshold_ms:.0f} ms): TCP ends at a relay nearer the edge than the client",
        )
    ]


class LatencySignal(BaseSignal):
    """The ``rtt`` signal and its CEL variable ``rtt``: ``checked``, ``too_far`` (the address's
    or a declared location is physically impossible given the measured round trips), ``inconclusive``
    (a claim the round trips do not settle: no evidence),
    ``violation_km``, ``region_countries`` (where the client can be), ``region_restricted`` (those
    of them the policy restricts), ``tunnel`` (a TCP/application RTT gap). Costs nothing when no
    RTT was measured. With a ``calibration`` (the operator's, ``latency.calibration.load``), its
    per-landmark bounds, reliabilities, inconsistent landmarks and expected-RTT ceiling are used;
    without one every landmark gets the physical bound."""

    name = NAME
    codes = meanings(CODES)
    variable = "rtt"

    def __init__(self, calibration: Calibration | None = None) -> None:
        self.calibration = calibration

    def evaluate(self, facts: Facts, ctx: SignalContext) -> list[Evidence]:
        if not facts.rtt and not facts.rtt_app_ms:
            return []  # nothing measured: no cost, no evidence
        return evaluate(facts, ctx, claimed_country=ctx.ip_country, calibration=self.calibration)

    def export(self, found: Found, facts: Facts) -> dict[str, Any]:  # noqa: ARG002 - the contract's signature
        codes = found.codes
        region = found.mapping(REGION)
        violation = max(
            (float(e.value.get("violation_km", 0.0)) for e in found.evidence
             if e.code == TOO_FAR and isinstance(e.value, dict)),
            default=0.0,
        )  # fmt: skip
        return {
            "checked": REGION in codes,
            "too_far": TOO_FAR in codes,
            "violation_km": violation,
            "region_countries": [str(c) for c in region.get("countries", [])],
            "region_restricted": [str(c) for c in region.get("restricted", [])],
            "tunnel": "RTT_TUNNEL_GAP" in codes,
            "inconclusive": INCONCLUSIVE in codes,
        }


SIGNAL = LatencySignal()
