"""Feasibility of location claims, on real WonderNetwork pings and as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from latency_data import WN

from geowarden.latency import model as lm
from geowarden.latency.places import places
from geowarden.latency.verify import (
    DEFAULT_TOLERANCE,
    INCONCLUSIVE,
    INSUFFICIENT,
    REGION,
    STRICT,
    TOO_FAR,
    WHY_EMPTY,
    WHY_FEW,
    ClaimedCountry,
    ClaimedPoint,
    discs,
    feasible_mask,
    verify,
)
from geowarden.model import RTTSample

EU_POPS = ["Frankfurt", "Paris", "London", "Rotterdam", "Warsaw", "Barcelona", "Stockholm", "Milan", "Graz"]
WORLD_POPS = [
    "Frankfurt",
    "London",
    "Manhattan",
    "Los Angeles",
    "Tokyo",
    "Singapore",
    "Sydney",
    "Sao Paulo",
    "Johannesburg",
    "Pune",
    "Moscow",
    "Dallas",
]


def _pops(wn: WN, names: list[str], client: str) -> list[str]:
    return [p for p in names if p in wn.name and p != client]


@pytest.mark.parametrize(
    ("client", "country"),
    [("Munich", "DE"), ("Tokyo", "JP"), ("Sydney", "AU"), ("Indianapolis", "US"), ("Nairobi", "KE"), ("Moscow", "RU")],
)
def test_true_claims_from_real_pings_are_feasible(wn: WN, client: str, country: str) -> None:
    samples = wn.samples(client, _pops(wn, WORLD_POPS, client))
    assert len(samples) >= 8
    point = verify(samples, ClaimedPoint(*wn.point(client)))
    assert point.feasible and point.violation_km == 0.0 and point.reasons == (REGION,)
    assert verify(samples, ClaimedCountry(country), with_region=False).feasible
    assert country in point.region["countries"]


def test_frankfurt_3ms_cannot_be_in_sydney() -> None:
    fra = (
        RTTSample(lat=50.1167, lon=8.6833, ms=3.0),
        RTTSample(lat=48.86, lon=2.35, ms=9.0),
        RTTSample(lat=52.37, lon=4.90, ms=7.0),
    )
    for claimed in (ClaimedPoint(-33.87, 151.21), ClaimedCountry("AU")):
        res = verify(fra, claimed)
        assert res.feasible is False and res.confidence > 0.9
        assert res.reasons == (TOO_FAR, REGION)
        assert res.violation_km > 12_000  # Sydney is ~16,500 km away, the discs < 1,000 km
        # one landmark alone cannot be outvoted if misplaced: inconclusive, never false
        one = verify(fra[:1], claimed)
        assert one.feasible is None and one.reasons == (INCONCLUSIVE, REGION) and one.why == WHY_FEW
    res = verify(fra, ClaimedCountry("DE"))
    assert res.feasible
    assert res.region["countries"] and set(res.region["countries"]) <= {
        "AT", "BE", "CH", "CZ", "DE", "DK", "FR", "LI", "LU", "NL", "PL", "GB", "IT", "ES", "AD", "MC", "SM", "SI",
        "HR", "HU", "SK", "IE", "JE", "GG", "IM", "VA", "NO", "SE",
    }  # fmt: skip  # Europe within reach of the three discs


def test_au_claim_from_europe_only_low_rtts_is_infeasible(wn: WN) -> None:
    """A client in The Hague measured from European PoPs only: AU is out, NL is in."""
    samples = wn.samples("The Hague", _pops(wn, EU_POPS, "The Hague"))
    assert max(s.ms for s in samples) < 60
    au = verify(samples, ClaimedCountry("AU"))
    assert not au.feasible and au.violation_km > 10_000
    assert au.nearest_place is not None
    assert verify(samples, ClaimedCountry("NL")).feasible
    assert not verify(samples, ClaimedCountry("CN")).feasible
    assert not verify(samples, ClaimedCountry("US")).feasible


def test_false_claims_1500km_away_are_caught(wn: WN) -> None:
    client = "Frankfurt"
    samples = wn.samples(client, _pops(wn, EU_POPS + WORLD_POPS, client))
    c = wn.idx(client)
    far = [k for k in range(len(wn.name)) if wn.dist[c, k] >= 1500]
    caught = sum(
        not verify(samples, ClaimedPoint(float(wn.lat[k]), float(wn.lon[k])), with_region=False).feasible for k in far
    )
    assert caught / len(far) > 0.95


def test_a_bad_landmark_is_tolerated(wn: WN) -> None:
    """The server listed in Belfast answers London-area servers in ~1 ms: it is not in Belfast.
    Its disc excludes a London client's true location; the tolerance rule outvotes it."""
    client = "Maidstone"  # near London
    pops = ["Belfast", "Paris", "Frankfurt", "Rotterdam", "Carlow", "Manhattan", "Barcelona"]
    samples = wn.samples(client, _pops(wn, pops, client))
    truth = ClaimedPoint(*wn.point(client))
    assert verify(samples, truth, tolerance=STRICT).feasible is False  # trusting every disc rejects the truth
    res = verify(samples, truth)
    assert res.feasible is not False  # Belfast's disc misses by ~350 km: not enough to reject
    # a calibration from the mesh knows Belfast is inconsistent and drops its samples altogether
    cal = lm.calibrate(wn.lat, wn.lon, wn.rtt, names=wn.name)
    calibrated = verify(samples, truth, calibration=cal, tolerance=STRICT)
    assert calibrated.feasible and calibrated.region["unusable_samples"] == 1
    # ... and the tolerance does not let a far claim through
    assert not verify(samples, ClaimedCountry("ES")).feasible or "ES" in res.region["countries"]
    assert not verify(samples, ClaimedCountry("RU")).feasible


def test_no_usable_samples_is_insufficient() -> None:
    bad = (RTTSample(lat=95.0, lon=0.0, ms=3.0), RTTSample(lat=0.0, lon=0.0, ms=-1.0))
    for samples in ((), bad):
        res = verify(samples, ClaimedCountry("DE"))
        assert res.feasible is None and res.reasons == (INSUFFICIENT, INCONCLUSIVE) and not res.sufficient
        assert res.violation_km == 0.0


def test_contradictory_discs_are_inconclusive() -> None:
    """Three landmarks 1 ms from the client on three continents: no point fits; nothing is proven."""
    samples = (
        RTTSample(lat=50.11, lon=8.68, ms=1.0),
        RTTSample(lat=35.68, lon=139.69, ms=1.0),
        RTTSample(lat=40.71, lon=-74.0, ms=1.0),
    )
    res = verify(samples, ClaimedCountry("AU"))
    assert res.feasible is None and res.why == WHY_EMPTY and res.region["empty"]
    assert verify(samples, ClaimedCountry("AU"), with_region=False).feasible is None


def test_unknown_country_raises() -> None:
    with pytest.raises(KeyError):
        verify((RTTSample(lat=0.0, lon=0.0, ms=5.0),), ClaimedCountry("ZZ"))


def test_duplicate_landmark_keeps_its_smallest_rtt() -> None:
    d = discs(
        (
            RTTSample(lat=50.0, lon=8.0, ms=30.0),
            RTTSample(lat=50.0, lon=8.0, ms=3.0),
            RTTSample(lat=48.0, lon=2.0, ms=12.0),
        )
    )
    assert d.n == 2 and sorted(d.ms.tolist()) == [3.0, 12.0]


# ---------------------------------------------------------------- properties

_lat = st.floats(-80.0, 80.0)
_lon = st.floats(-179.0, 179.0)
_sample = st.tuples(_lat, _lon, st.floats(0.5, 250.0))


def _to_samples(raw: list[tuple[float, float, float]]) -> tuple[RTTSample, ...]:
    return tuple(RTTSample(lat=a, lon=b, ms=m) for a, b, m in raw)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_sample, min_size=1, max_size=8),
    st.lists(st.floats(0.0, 80.0), min_size=8, max_size=8),
    _lat,
    _lon,
)
def test_adding_delay_never_makes_a_feasible_claim_infeasible(
    raw: list[tuple[float, float, float]], delays: list[float], lat: float, lon: float
) -> None:
    before = _to_samples(raw)
    after = tuple(RTTSample(lat=s.lat, lon=s.lon, ms=s.ms + d) for s, d in zip(before, delays, strict=False))
    claim = ClaimedPoint(lat, lon)
    r0 = verify(before, claim, with_region=False)
    r1 = verify(after, claim, with_region=False)
    assert r1.score <= r0.score + 1e-9  # the evidence against the claim never grows
    if r0.feasible:
        assert r1.feasible
    if r0.feasible is None and r0.why != WHY_EMPTY:
        assert r1.feasible is not False
    if r0.feasible is False and r1.feasible is False:
        assert r1.violation_km <= r0.violation_km + 1e-6


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_sample, min_size=1, max_size=6), st.lists(st.floats(0.0, 50.0), min_size=6, max_size=6))
def test_more_rtt_gives_a_larger_region(raw: list[tuple[float, float, float]], delays: list[float]) -> None:
    before = _to_samples(raw)
    after = tuple(RTTSample(lat=s.lat, lon=s.lon, ms=s.ms + d) for s, d in zip(before, delays, strict=False))
    lattice = places().lattice.xyz
    m0 = feasible_mask(lattice, discs(before), DEFAULT_TOLERANCE)
    m1 = feasible_mask(lattice, discs(after), DEFAULT_TOLERANCE)
    assert not (m0 & ~m1).any()  # every point feasible before is feasible after
    c0, c1 = verify(before, ClaimedCountry("DE")), verify(after, ClaimedCountry("DE"))
    assert set(c0.region["countries"]) <= set(c1.region["countries"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_sample, min_size=1, max_size=5), st.sampled_from(["DE", "US", "AU", "BR", "JP", "ZA", "IN", "RU"]))
def test_region_countries_are_exactly_the_feasible_country_claims(
    raw: list[tuple[float, float, float]], country: str
) -> None:
    samples = _to_samples(raw)
    res = verify(samples, ClaimedCountry(country))
    if res.why not in (WHY_FEW, WHY_EMPTY):  # those are inconclusive whatever the region says
        assert (res.feasible is not False) == (country in res.region["countries"])
    assert (res.feasible is not False) == (res.violation_km == 0.0)


def test_region_centroid_sits_inside_a_small_region(wn: WN) -> None:
    samples = wn.samples("Tokyo", _pops(wn, [*WORLD_POPS, "Koto", "Sapporo", "Hong Kong"], "Tokyo"))
    reg = verify(samples, ClaimedCountry("JP")).region
    lat, lon = reg["centroid"]
    assert lm.haversine_km(lat, lon, *wn.point("Tokyo")) < reg["radius_km"]
    assert reg["radius_km"] < 1500
    assert "JP" in reg["countries"] and reg["cities"][0]["country"] in reg["countries"]
    assert np.isfinite(reg["area_km2"])
