"""The evidence-weighted rule (``latency.rule``) and per-landmark reliability, on real pings and as properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from latency_data import WN

from geowarden.latency import model as lm
from geowarden.latency.places import places
from geowarden.latency.rule import FALSE, NULL, STRICT, TRUE, Tolerance, against, confidence, outcome, violation_km
from geowarden.latency.verify import discs
from geowarden.model import RTTSample


def test_suspect_landmarks_get_half_weight(wn: WN) -> None:
    """Santiago, Prague and Milan are removed on a single faster-than-light pair each: their partners
    (Hangzhou, Bratislava, Rome) may be the misplaced ones, so they are kept at half weight."""
    cal = lm.calibrate(wn.lat, wn.lon, wn.rtt, names=wn.name)
    weak = {x.name for x in cal.landmarks if x.reliability < 1.0}
    assert weak == {"Hangzhou", "Rome", "Bratislava"}
    assert cal.reliability_for(*wn.point("Rome")) == lm.SUSPECT_RELIABILITY
    assert cal.reliability_for(*wn.point("Frankfurt")) == 1.0
    assert cal.reliability_for(0.0, 0.0) == 1.0  # an unknown landmark
    again = lm.Calibration.from_dict(cal.to_dict())
    assert again.reliability_for(*wn.point("Rome")) == lm.SUSPECT_RELIABILITY


def test_outcomes_by_score() -> None:
    tol = Tolerance(severity_km=800.0, accept=0.05, reject_base=0.5, reject_share=0.01)
    w = np.ones(10)
    e = np.array([[-5.0] * 10, [20.0] + [-5.0] * 9, [400.0] + [-5.0] * 9, [500.0] + [-5.0] * 9, [900.0] * 10])
    s = against(e, w, tol)
    assert s.tolist() == pytest.approx([0.0, 0.025, 0.5, 0.625, 10.0])
    assert outcome(s, 10.0, 10, tol).tolist() == [TRUE, TRUE, NULL, FALSE, FALSE]  # threshold 0.5 + 0.01 * 10
    assert outcome(s, 10.0, 2, tol).tolist() == [TRUE, TRUE, NULL, NULL, NULL]  # too few discs: never false
    assert outcome(s, 100.0, 10, tol)[3] == NULL  # more landmark weight, more room for a few wrong discs
    v = violation_km(e, w, tol)
    assert v[:3].tolist() == [0.0, 0.0, 0.0] and v[3] == pytest.approx(20.0, abs=0.1) and v[4] > 800
    assert confidence(FALSE, 10.0, 10.0, tol) == 0.99 and confidence(NULL, 0.3, 10.0, tol) == 0.5
    assert outcome(against(e[1:2], w, STRICT), 10.0, 10, STRICT)[0] == FALSE  # strict: any violation


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-2000.0, 5000.0), min_size=1, max_size=12),
    st.lists(st.floats(0.0, 3000.0), min_size=12, max_size=12),
)
def test_shrinking_every_excess_never_raises_the_answer_against(excess: list[float], shrink: list[float]) -> None:
    tol = Tolerance()
    e0 = np.array([excess])
    e1 = e0 - np.array(shrink[: len(excess)])
    w = np.ones(len(excess))
    s0, s1 = against(e0, w, tol), against(e1, w, tol)
    assert s1[0] <= s0[0] + 1e-12
    a0, a1 = (int(outcome(s, float(w.sum()), len(excess), tol)[0]) for s in (s0, s1))
    assert a1 >= a0  # FALSE (-1) < NULL (0) < TRUE (1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(-60, 70), st.floats(-179, 179), st.floats(0.5, 300)), min_size=1, max_size=60))
def test_the_fast_score_is_the_rule(raw: list[tuple[float, float, float]]) -> None:
    """``Discs.against`` (dot-product thresholds, early stop) gives the rule's exact score below the limit."""
    d = discs(tuple(RTTSample(lat=a, lon=b, ms=m) for a, b, m in raw))
    xyz = places().lattice.xyz[::37]
    tol = Tolerance()
    exact = against(d.excess(xyz), d.weight, tol)
    assert np.allclose(d.against(xyz, tol), exact, atol=1e-9)
    fast = d.against(xyz, tol, limit=0.5)
    assert np.array_equal(fast <= 0.5, exact <= 0.5)
    assert np.allclose(fast[exact <= 0.5], exact[exact <= 0.5], atol=1e-9)
