"""The expected-RTT ceiling: a claim near a landmark that answers far too slowly, and honest detours."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geowarden.latency import model as lm
from geowarden.latency.ceiling import CEILING_FIT_KM, CEILING_WIDE_FIT_KM, RttCeiling
from geowarden.latency.rule import Tolerance
from geowarden.latency.verify import DEFAULT_TOLERANCE, INCONCLUSIVE, WHY_EMPTY, ClaimedPoint, discs, verify
from geowarden.model import RTTSample

FRANKFURT, AMSTERDAM, PARIS, LONDON = (50.11, 8.68), (52.37, 4.90), (48.86, 2.35), (51.51, -0.13)
SINGAPORE = (1.29, 103.85)
#: honest clients of a mesh: at most 10 ms within 500 km, 20 ms within 1,000 km, and so on (+10 ms added)
CEILING = RttCeiling((0.0, 500.0, 1000.0, 3000.0, 8000.0), (10.0, 20.0, 50.0, 150.0, 300.0))
CAL = lm.Calibration(ceiling=CEILING)
NO_CEILING = lm.Calibration()


def _samples(rtts: dict[tuple[float, float], float]) -> tuple[RTTSample, ...]:
    return tuple(RTTSample(lat=a, lon=b, ms=ms) for (a, b), ms in rtts.items())


def test_ceiling_is_a_non_decreasing_step_function() -> None:
    assert CEILING.at([0.0, 499.0, 500.0, 2000.0, 20000.0]).tolist() == [20.0, 20.0, 30.0, 60.0, 310.0]
    with pytest.raises(ValueError, match="one RTT per distance edge"):
        RttCeiling((0.0, 100.0), (10.0,))
    rt = RttCeiling.from_dict(CEILING.to_dict())
    assert rt == CEILING


def test_a_false_claim_near_landmarks_is_caught_by_the_ceiling_alone() -> None:
    # 120 ms to three landmarks around Frankfurt, 105 ms to Singapore: Frankfurt lies inside every
    # disc (no physical proof), but honest clients there answer those landmarks within ~20 ms
    rtts = {FRANKFURT: 120.0, AMSTERDAM: 120.0, PARIS: 120.0, SINGAPORE: 105.0}
    claim = ClaimedPoint(*FRANKFURT)
    without = verify(_samples(rtts), claim, calibration=NO_CEILING, with_region=False)
    assert without.feasible is True and without.score == 0.0
    res = verify(_samples(rtts), claim, calibration=CAL, with_region=False)
    assert res.feasible is False and res.violation_km > 0.0
    # the same client with the ceiling switched off in the rule: not rejected
    off = dataclasses.replace(DEFAULT_TOLERANCE, ceiling_weight=0.0)
    assert verify(_samples(rtts), claim, calibration=CAL, tolerance=off, with_region=False).feasible is True


def test_an_honest_client_with_detoured_routes_is_not_rejected() -> None:
    # a client in Frankfurt whose route to London detours (250 ms where neighbours see < 30 ms)
    rtts = {FRANKFURT: 3.0, AMSTERDAM: 8.0, PARIS: 10.0, LONDON: 250.0, SINGAPORE: 160.0}
    claim = ClaimedPoint(*FRANKFURT)
    point = lm.unit_vectors(*FRANKFURT).reshape(1, 3)
    d = discs(_samples(rtts), CAL)
    assert d.ceiling_excess(point, reach_km=DEFAULT_TOLERANCE.ceiling_reach_km)[0].max() > 200.0
    assert d.ceiling_score(point, DEFAULT_TOLERANCE)[0] == 0.0  # the worst landmark is always dropped
    assert verify(_samples(rtts), claim, calibration=CAL, with_region=False).feasible is True
    # a second detour counts, but alone it stays short of a rejection: inconclusive
    rtts[PARIS] = 250.0
    assert discs(_samples(rtts), CAL).ceiling_score(point, DEFAULT_TOLERANCE)[0] == pytest.approx(0.5)
    res = verify(_samples(rtts), claim, calibration=CAL, with_region=False)
    assert res.feasible is None and res.reasons == (INCONCLUSIVE,)
    # a third would be evidence enough, but the 3 ms disc puts the client near Frankfurt, where
    # the ceiling then rules out every point: the samples contradict each other, proving nothing
    rtts[AMSTERDAM] = 250.0
    res = verify(_samples(rtts), claim, calibration=CAL, with_region=False)
    assert res.feasible is None and res.why == WHY_EMPTY and res.score > DEFAULT_TOLERANCE.reject_at(5.0)


def test_a_satellite_last_mile_is_granted_whole() -> None:
    # an honest Frankfurt client behind a geostationary link: ~600 ms added to every RTT
    rtts = {FRANKFURT: 603.0, AMSTERDAM: 608.0, PARIS: 610.0, LONDON: 612.0, SINGAPORE: 760.0}
    res = verify(_samples(rtts), ClaimedPoint(*FRANKFURT), calibration=CAL, with_region=False)
    assert res.feasible is True


def test_ceiling_from_a_mesh() -> None:
    rng = np.random.default_rng(3)
    lat, lon = rng.uniform(35.0, 60.0, 40), rng.uniform(-10.0, 30.0, 40)
    dist = lm.pair_distances(lat, lon)
    rtt = dist / 80.0 + 2.0 + rng.uniform(0.0, 5.0, dist.shape)
    rtt[0, 1:] += 60.0  # landmark 0 sits behind a slow regional route, both ways
    rtt[1:, 0] += 60.0
    ceil = lm.rtt_ceiling(lat, lon, rtt)
    assert ceil is not None
    ms = np.asarray(ceil.ms)
    assert (np.diff(ms) >= 0.0).all()
    # every pair of the mesh within the fitting distance is under each end's own ceiling
    sym = np.fmin(rtt, rtt.T)
    extra = np.array([ceil.extra_for(a, b) for a, b in zip(lat, lon, strict=True)])
    near = (dist <= CEILING_FIT_KM) & ~np.eye(40, dtype=bool)
    assert (sym <= ceil.at(dist) + extra[:, None])[near].all()
    # the slow landmark gets a large extra, and so does every landmark whose pairs include it (a slow
    # pair does not tell which end is slow); landmarks out of its reach stay tight
    assert extra[0] > 50.0 and (extra[near[0]] > 50.0).all()
    assert (~near[0, 1:]).sum() >= 3 and (extra[1:][~near[0, 1:]] < 10.0).all()
    assert ceil.extra_for(0.0, 0.0) == ceil.default_extra_ms >= extra.max() - 1e-9  # a landmark never seen
    assert lm.rtt_ceiling(lat[:3], lon[:3], rtt[:3, :3]) is None  # 3 pairs: no bin is populated enough
    cal = lm.calibrate(lat, lon, rtt)
    assert cal.ceiling == ceil
    saved = lm.Calibration.from_dict(cal.to_dict()).ceiling
    assert saved is not None and saved.edges_km == ceil.edges_km
    assert np.all(np.asarray(saved.ms) >= ms) and np.allclose(saved.ms, ms, atol=0.01)
    assert saved.extra_for(lat[0], lon[0]) == pytest.approx(extra[0], abs=0.01)


def _sparse_mesh(slow_sparse: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """30 landmarks in Europe (one slow pair among them), one 2,200-4,000 km south of all of them
    (a sparse region), one in Australia (> 4,000 km from every other)."""
    rng = np.random.default_rng(5)
    lat = np.concatenate([rng.uniform(45.0, 55.0, 30), [25.0, -33.9]])
    lon = np.concatenate([rng.uniform(0.0, 20.0, 30), [10.0, 151.2]])
    dist = lm.pair_distances(lat, lon)
    rtt = dist / 80.0 + 2.0 + rng.uniform(0.0, 5.0, dist.shape)
    rtt[1, 2] = rtt[2, 1] = rtt[1, 2] + 80.0  # one detour in Europe sets the mesh's largest extra
    near = int(np.argmin(dist[30, :30]))
    rtt[30, near] += slow_sparse  # one slow pair of the sparse landmark
    rtt[near, 30] += slow_sparse
    return lat, lon, dist, rtt


def test_a_landmark_in_a_sparse_region_gets_its_own_extra() -> None:
    lat, lon, dist, rtt = _sparse_mesh()
    assert (dist[30, :30] > CEILING_FIT_KM).all() and (dist[30, :30] <= CEILING_WIDE_FIT_KM).sum() >= 5
    assert (dist[31, :31] > CEILING_WIDE_FIT_KM).all()
    ceil = lm.rtt_ceiling(lat, lon, rtt)
    assert ceil is not None and ceil.default_extra_ms > 70.0  # the European detour
    sparse, isolated = ceil.extra_for(lat[30], lon[30]), ceil.extra_for(lat[31], lon[31])
    # fitted on its own pairs within 4,000 km: every one of them is under its ceiling, and the
    # ceiling is far tighter than the mesh's worst (what it got before)
    wide = dist[30, :30] <= CEILING_WIDE_FIT_KM
    assert (np.fmin(rtt, rtt.T)[30, :30] <= ceil.at(dist[30, :30]) + sparse)[wide].all()
    assert sparse < 20.0 < ceil.default_extra_ms
    assert isolated == ceil.default_extra_ms  # no pair within 4,000 km: the mesh's largest extra
    # a sparse landmark with a pair slower than the mesh's worst gets no more than that
    slow = lm.rtt_ceiling(*_sparse_mesh(300.0)[:2], _sparse_mesh(300.0)[3])
    assert slow is not None and slow.extra_for(lat[30], lon[30]) == slow.default_extra_ms


_lat = st.floats(-60.0, 70.0)
_lon = st.floats(-179.0, 179.0)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(_lat, _lon, st.floats(0.5, 250.0)), min_size=1, max_size=8),
    st.floats(0.0, 600.0),
    _lat,
    _lon,
)
def test_the_same_delay_on_every_rtt_never_raises_the_evidence(
    raw: list[tuple[float, float, float]], delay: float, lat: float, lon: float
) -> None:
    before = tuple(RTTSample(lat=a, lon=b, ms=m) for a, b, m in raw)
    after = tuple(RTTSample(lat=s.lat, lon=s.lon, ms=s.ms + delay) for s in before)
    claim = ClaimedPoint(lat, lon)
    tol = Tolerance()
    r0 = verify(before, claim, calibration=CAL, tolerance=tol, with_region=False)
    r1 = verify(after, claim, calibration=CAL, tolerance=tol, with_region=False)
    assert r1.score <= r0.score + 1e-6
    if r0.feasible:
        assert r1.feasible
