"""The physical model: distances, bounds, inconsistent landmarks and calibration, on real pings."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from latency_data import WN

from geowarden.latency import model as lm


def test_haversine_known_distances() -> None:
    # Frankfurt - Sydney ~16,500 km; a point to itself 0; antipodes half the circumference
    assert lm.haversine_km(50.11, 8.68, -33.87, 151.21) == pytest.approx(16_480, rel=0.01)
    assert lm.haversine_km(10.0, 20.0, 10.0, 20.0) == pytest.approx(0.0, abs=1e-6)
    assert lm.haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(lm.HALF_CIRCUMFERENCE_KM)


def test_dot_product_distances_agree_with_haversine() -> None:
    rng = np.random.default_rng(1)
    lat, lon = rng.uniform(-90, 90, (2, 200)), rng.uniform(-180, 180, (2, 200))
    a, b = lm.unit_vectors(lat[0], lon[0]), lm.unit_vectors(lat[1], lon[1])
    via_dot = lm.km_of_dot((a * b).sum(axis=1))
    assert np.allclose(via_dot, lm.haversine_km(lat[0], lon[0], lat[1], lon[1]), atol=1e-3)


def test_two_thirds_c_is_100_km_per_ms_of_rtt() -> None:
    assert lm.NAIVE.max_km(1.0) == pytest.approx(99.93, abs=0.01)
    assert lm.PHYSICAL.max_km(0.0) == pytest.approx(25.0)
    assert lm.PHYSICAL.max_km(10_000.0) == pytest.approx(lm.HALF_CIRCUMFERENCE_KM)  # never past the antipode
    with pytest.raises(ValueError, match="speed"):
        lm.DistanceBound(250.0, 0.0)  # faster than light in fibre
    with pytest.raises(ValueError, match="slack"):
        lm.DistanceBound(150.0, -1.0)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 2000.0),
    st.floats(0.0, 500.0),
    st.floats(1.0, lm.FIBRE_KM_PER_MS),
    st.floats(0.0, 200.0),
)
def test_bound_grows_with_rtt(rtt: float, more: float, speed: float, slack: float) -> None:
    """A client can add delay, never remove it: more RTT never gives a smaller disc."""
    b = lm.DistanceBound(speed, slack)
    assert b.max_km(rtt + more) >= b.max_km(rtt)
    assert b.max_km(rtt) <= lm.PHYSICAL.max_km(rtt) + slack


def test_real_pairs_respect_two_thirds_c_except_bad_landmarks(wn: WN) -> None:
    """On the WonderNetwork mesh, only pairs with a landmark found inconsistent beat 2/3 c."""
    removed = lm.find_inconsistent(wn.lat, wn.lon, wn.rtt, lm.NAIVE)
    bad = {i for i, _ in removed}
    names = [wn.name[i] for i, _ in removed]
    assert names[0] == "Belfast"  # listed in Belfast, answers London-area servers in ~1-4 ms
    assert len(bad) <= 6
    v = lm.violations(wn.dist, np.fmin(wn.rtt, wn.rtt.T), lm.NAIVE)
    pairs = np.argwhere(v)
    assert len(pairs) > 0  # the data do contain impossible pairs
    assert all(a in bad or b in bad for a, b in pairs)
    # and the impossible pairs are a tiny fraction of all measured pairs
    assert v.sum() / np.isfinite(wn.rtt).sum() < 0.002


def test_find_inconsistent_on_a_handmade_mesh() -> None:
    # three landmarks in a row 1,000 km apart with honest RTTs; the fourth claims to be in Sydney
    # but answers the others in 1 ms
    lat = np.array([0.0, 0.0, 0.0, -33.87])
    lon = np.array([0.0, 9.0, 18.0, 151.2])
    rtt = np.array(
        [
            [np.nan, 15.0, 30.0, 1.0],
            [15.0, np.nan, 15.0, 1.0],
            [30.0, 15.0, np.nan, 1.0],
            [1.0, 1.0, 1.0, np.nan],
        ]
    )
    assert lm.find_inconsistent(lat, lon, rtt) == [(3, 3)]
    rtt[3, :] = rtt[:, 3] = np.nan  # unmeasured pairs are never evidence
    assert lm.find_inconsistent(lat, lon, rtt) == []


def test_calibration_never_exceeds_light_and_drops_bad_landmarks(wn: WN) -> None:
    cal = lm.calibrate(wn.lat, wn.lon, wn.rtt, names=wn.name)
    speeds = [x.bound.speed_km_per_ms for x in cal.landmarks]
    assert all(0 < s <= lm.FIBRE_KM_PER_MS + 1e-9 for s in speeds)
    assert np.median(speeds) < 0.9 * lm.FIBRE_KM_PER_MS  # most landmarks never see 2/3 c: tighter discs
    assert "Belfast" in {x.name for x in cal.inconsistent}
    b = wn.point("Belfast")
    assert cal.is_inconsistent(*b)
    assert cal.bound_for(*wn.point("Frankfurt")).speed_km_per_ms in speeds
    assert cal.bound_for(1.0, 1.0) == lm.PHYSICAL  # an unknown position keeps the physical bound
    again = lm.Calibration.from_dict(cal.to_dict())
    assert again.bound_for(*wn.point("Frankfurt")).speed_km_per_ms == pytest.approx(
        cal.bound_for(*wn.point("Frankfurt")).speed_km_per_ms, abs=1e-3
    )
    assert again.is_inconsistent(*b)


def test_calibrated_bounds_hold_out_of_sample(wn: WN) -> None:
    """Calibrate the landmarks on half of the servers; their pairs with the other half stay inside
    the calibrated discs (apart from the landmarks found inconsistent on the full mesh)."""
    rng = np.random.default_rng(7)
    order = rng.permutation(len(wn.name))
    train, test = order[: len(order) // 2], order[len(order) // 2 :]
    bad = {i for i, _ in lm.find_inconsistent(wn.lat, wn.lon, wn.rtt)}
    cal = lm.calibrate(wn.lat[train], wn.lon[train], wn.rtt[np.ix_(train, train)])
    broken = total = 0
    for i in train:
        if i in bad or cal.is_inconsistent(float(wn.lat[i]), float(wn.lon[i])):
            continue
        bound = cal.bound_for(float(wn.lat[i]), float(wn.lon[i]))
        for j in test:
            if j in bad or math.isnan(wn.rtt[i, j]):
                continue
            total += 1
            broken += wn.dist[i, j] > bound.max_km(min(wn.rtt[i, j], wn.rtt[j, i]))
    assert total > 3000
    assert broken / total < 0.01  # single discs; the tolerance rule of verify absorbs these
