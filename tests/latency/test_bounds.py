"""The verification's shortcuts change no answer: BLAS products in blocks, pruned discs and points.

The reference below scores every point of the globe lattice and every populated place against every
disc, with the rule written out directly (every distance, every ceiling term); ``region``, ``assess``
and ``verify`` must agree with it on real WonderNetwork pings, with and without a calibration that
carries a ceiling, and on random discs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from latency_data import WN

from geowarden.latency import model as lm
from geowarden.latency.bounds import GEMM_ENTRIES, GEMV_ROWS, Cap, dot, dots, dots_of, running_sum
from geowarden.latency.model import FIBRE_KM_PER_MS, cos_of_km, km_of_dot, unit_vectors
from geowarden.latency.places import LATTICE_CELL_KM2, PointSet, places
from geowarden.latency.rule import FALSE, TRUE, ceiling_against, outcome
from geowarden.latency.verify import (
    DEFAULT_TOLERANCE,
    PLACE_SLACK_KM,
    ClaimedCountry,
    ClaimedPoint,
    Discs,
    Tolerance,
    _open_rows,
    assess,
    discs,
    region,
    verify,
)
from geowarden.model import RTTSample

FloatArray = npt.NDArray[np.float64]


def _unit(rng: np.random.Generator, n: int) -> FloatArray:
    return unit_vectors(rng.uniform(-90, 90, n), rng.uniform(-180, 180, n)).reshape(-1, 3)


@pytest.mark.parametrize(
    ("n", "m"),
    [(1, 1), (1, 200), (200, 1), (7001, 1), (2, 5), (7459, 8), (2858, 32), (GEMM_ENTRIES // 160 * 3 + 1, 160)],
)
def test_blocked_products_are_one_product(n: int, m: int) -> None:
    """``dots`` gives the values of one BLAS product; ``dots_of`` any of its columns, one or several."""
    rng = np.random.default_rng(n * 1000 + m)
    a, b = _unit(rng, n), _unit(rng, m)
    whole = a @ b.T
    assert np.array_equal(dots(a, b), whole)
    for k in {1, 2, max(1, m // 3)}:
        cols = np.sort(rng.permutation(m)[:k])
        assert np.array_equal(dots_of(a, b, cols), whole[:, cols])


@pytest.mark.parametrize("n", [1, 2, GEMV_ROWS, GEMV_ROWS + 1, 3 * GEMV_ROWS + 2, 40_000])
def test_blocked_matrix_vector_products_are_one_product(n: int) -> None:
    rng = np.random.default_rng(n)
    a, v = _unit(rng, n), _unit(rng, 1)[0]
    assert np.array_equal(dot(a, v), a @ v)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 300), st.floats(1.0, 3000.0))
def test_a_cap_bounds_every_distance(seed: int, n: int, spread_km: float) -> None:
    """The distance range ``Cap`` gives for a whole set holds for each of its points."""
    rng = np.random.default_rng(seed)
    centre = _unit(rng, 1)[0]
    pts = centre + (_unit(rng, n) - centre) * (spread_km / 6371.0) * rng.uniform(0, 1, (n, 1))
    pts /= np.linalg.norm(pts, axis=1)[:, None]
    landmarks = _unit(rng, 50)
    lo, hi = Cap.around(pts).distance_range(landmarks)
    dist = km_of_dot(dots(pts, landmarks))
    assert (dist >= lo).all() and (dist <= hi).all()
    far = float(km_of_dot(pts @ centre).max())  # the cap's radius is at most twice this: it says something
    assert (hi - lo).max() <= 4.0 * far + 1.0


def test_a_running_sum_adds_left_to_right() -> None:
    terms = np.array([[1e16, 1.0, -1e16, 1.0], [0.1, 0.2, 0.3, 0.0]])
    assert running_sum(np.array([1.0, 0.0]), terms).tolist() == [(((1.0 + 1e16) + 1.0) - 1e16) + 1.0, 0.1 + 0.2 + 0.3]


# -- the reference: every point against every disc, the rule written out ------------------------


def ref_against(d: Discs, xyz: FloatArray, tol: Tolerance, extra_km: float) -> FloatArray:
    """The score against the discs, tightest first, added left to right; every distance computed."""
    order = np.argsort(d.radius_km, kind="stable")
    r = d.radius_km[order] + extra_km
    dd = dots(xyz, d.xyz[order])  # one BLAS product (``test_blocked_products_are_one_product``)
    g = np.where(
        dd < cos_of_km(r + tol.severity_km),
        1.0,
        np.where(dd < cos_of_km(r), np.clip((km_of_dot(dd) - r) / tol.severity_km, 0.0, 1.0), 0.0),
    )
    return running_sum(np.zeros(len(xyz)), g * d.weight[order])


def ref_ceiling(d: Discs, xyz: FloatArray, tol: Tolerance, extra_km: float) -> FloatArray:
    """``rule.ceiling_against`` on every landmark's RTT excess, every distance computed."""
    if d.ceiling is None or tol.ceiling_weight == 0.0:
        return np.zeros(len(xyz))
    km = np.maximum(km_of_dot(dots(xyz, d.xyz)) - extra_km, 0.0)
    speed = np.full(d.n, FIBRE_KM_PER_MS) if d.speed is None else d.speed
    allowance = (d.ms - 2.0 * np.maximum(km - d.slack_km, 0.0) / speed).min(axis=1, keepdims=True)
    own = np.zeros(d.n) if d.ceiling_extra is None else d.ceiling_extra
    reach = km <= tol.ceiling_reach_km
    excess = np.where(reach, d.ms - allowance - d.ceiling.at(km) - own, -np.inf)
    cols = np.flatnonzero(reach.any(axis=0))
    if len(cols) == 0:
        return np.zeros(len(xyz))
    return ceiling_against(excess[:, cols], d.weight[cols], tol)


def ref_open(d: Discs, ps: PointSet, tol: Tolerance, extra_km: float) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Rows of ``ps`` not ruled out, their disc scores; no point is within rounding of the limit."""
    limit = tol.reject_at(d.total_weight)
    score = ref_against(d, ps.xyz, tol, extra_km)
    total = score + ref_ceiling(d, ps.xyz, tol, extra_km)
    assert not (np.abs(total - limit) < 1e-9).any(), "a point on the limit: the comparison below proves nothing"
    rows = np.flatnonzero(total <= limit)
    return rows, score[rows]


def ref_region(d: Discs, tol: Tolerance) -> dict[str, object]:
    """What ``region`` reports that depends on which points are open."""
    pl = places()
    lat_ok, lat_score = ref_open(d, pl.lattice, tol, 0.0)
    pl_ok, pl_score = ref_open(d, pl.points, tol, PLACE_SLACK_KM)
    pop = pl.population[pl_ok]
    top = pl_ok[np.argsort(-pop, kind="stable")][:10]
    return {
        "empty": len(lat_ok) + len(pl_ok) == 0,
        "countries": pl.countries_of(pl_ok),
        "cities": [str(pl.name[k]) for k in top],
        "area_km2": round(len(lat_ok) * LATTICE_CELL_KM2, -2),
        "consistent": bool((lat_score <= 0.0).any() or (pl_score <= 0.0).any()),
    }


def ref_assess(d: Discs, claimed: ClaimedPoint | ClaimedCountry, tol: Tolerance) -> tuple[int, float, int]:
    """The answer and score of a claim, and for a country its best place (its row in ``places``)."""
    extra = 0.0
    if isinstance(claimed, ClaimedPoint):
        xyz = unit_vectors(claimed.lat, claimed.lon).reshape(1, 3)
    else:
        xyz, extra = places().points.xyz[places().by_country[claimed.code]], PLACE_SLACK_KM
    ceiling = ref_ceiling(d, xyz, tol, extra)
    score = ref_against(d, xyz, tol, extra) + ceiling
    ans = outcome(score, d.total_weight, d.n, tol, ceiling)
    k = int(np.lexsort((score, -ans))[0])
    place = -1 if isinstance(claimed, ClaimedPoint) else int(places().by_country[claimed.code][k])
    return int(ans[k]), float(score[k]), place


# -- real claims ------------------------------------------------------------------------------

#: Landmark draws (seed, how many) and the clients, all real WonderNetwork servers.
DRAWS = [(1, 12), (2, 40), (3, 120)]
CLIENTS = ["Munich", "Tokyo", "Sydney", "Nairobi", "Sao Paulo", "Dallas"]
FAR = {"Munich": "AU", "Tokyo": "BR", "Sydney": "DE", "Nairobi": "US", "Sao Paulo": "JP", "Dallas": "IN"}


def _draw(wn: WN, seed: int, n: int) -> list[int]:
    pool = [k for k, name in enumerate(wn.name) if name not in CLIENTS]
    return sorted(np.random.default_rng(seed).choice(pool, size=n, replace=False).tolist())


@pytest.fixture(scope="module")
def calibrations(wn: WN) -> dict[tuple[int, int], lm.Calibration]:
    out = {}
    for seed, n in DRAWS:
        idx = _draw(wn, seed, n)
        out[(seed, n)] = lm.calibrate(wn.lat[idx], wn.lon[idx], wn.rtt[np.ix_(idx, idx)])
    return out


@pytest.mark.parametrize("calibrated", [False, True], ids=["physical", "with ceiling"])
@pytest.mark.parametrize(("seed", "n"), DRAWS)
def test_region_and_verify_agree_with_the_reference_on_real_pings(
    wn: WN, calibrations: dict[tuple[int, int], lm.Calibration], seed: int, n: int, calibrated: bool
) -> None:
    cal = calibrations[(seed, n)] if calibrated else None
    assert cal is None or cal.ceiling is not None
    landmarks = [wn.name[k] for k in _draw(wn, seed, n)]
    tol = DEFAULT_TOLERANCE
    answers = set()
    for client in CLIENTS:
        samples = wn.samples(client, landmarks)
        d = discs(samples, cal)
        got, want = region(d, tol), ref_region(d, tol)
        assert {k: got.get(k) for k in want if k != "cities"} == {k: v for k, v in want.items() if k != "cities"}
        assert [c["name"] for c in got.get("cities", [])] == want["cities"]
        lat, lon = wn.point(client)
        home = places().country[int(np.argmax(dots(places().points.xyz, unit_vectors(lat, lon).reshape(1, 3))))]
        for claimed in (
            ClaimedPoint(lat, lon),
            ClaimedPoint(-lat, (lon + 360.0) % 360.0 - 180.0),  # the antipode
            ClaimedCountry(FAR[client]),
            ClaimedCountry(str(home)),
        ):
            a = assess(d, claimed, tol)
            answer, score, place = ref_assess(d, claimed, tol)
            assert (a.answer, a.score, -1 if a.place is None else a.place) == (answer, score, place)  # to the bit
            answers.add(answer)
            if isinstance(claimed, ClaimedCountry):
                xyz = places().points.xyz[places().by_country[claimed.code]]
                assert np.array_equal(
                    d.ceiling_score(xyz, tol, PLACE_SLACK_KM), ref_ceiling(d, xyz, tol, PLACE_SLACK_KM)
                )
            v = verify(samples, claimed, calibration=cal, tolerance=tol)
            assert v.region == got and v.score == a.score
    assert {TRUE, FALSE} <= answers  # the claims exercise both sides of the rule


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-60, 70), st.floats(-179, 179), st.floats(0.5, 300), st.sampled_from([0.5, 1.0])),
        min_size=1,
        max_size=80,
    ),
    st.booleans(),
)
def test_pruning_never_changes_a_score_or_the_open_points(
    raw: list[tuple[float, float, float, float]], with_ceiling: bool
) -> None:
    """On random discs: the disc score of every point not past the limit is the reference's to the
    bit, and the points the region keeps are the reference's (ceiling included)."""
    samples = tuple(RTTSample(lat=a, lon=b, ms=m) for a, b, m, _ in raw)
    d = discs(samples, CEILING if with_ceiling else None)
    weights = {(float(a), float(b)): w for a, b, _, w in raw}
    d = Discs(
        d.lat, d.lon, d.ms, d.radius_km, d.xyz, np.array([weights[(a, b)] for a, b in zip(d.lat, d.lon, strict=True)]),
        d.unusable, d.speed, d.slack_km, d.ceiling, d.ceiling_extra,
    )  # fmt: skip
    tol = DEFAULT_TOLERANCE
    ps = places().points
    sub = PointSet(ps.lat[::23], ps.lon[::23], ps.xyz[::23])
    limit = tol.reject_at(d.total_weight)
    want = ref_against(d, sub.xyz, tol, PLACE_SLACK_KM)
    got = d.against(sub.xyz, tol, PLACE_SLACK_KM, limit)
    below = want <= limit
    assert np.array_equal(got <= limit, below)
    assert np.array_equal(got[below], want[below])
    assert np.array_equal(d.against(sub.xyz, tol, PLACE_SLACK_KM), want)
    ceiling = ref_ceiling(d, sub.xyz, tol, PLACE_SLACK_KM)
    assert np.array_equal(d.ceiling_score(sub.xyz, tol, PLACE_SLACK_KM), ceiling)
    total = want + ceiling
    rows, score = _open_rows(sub, d, tol, PLACE_SLACK_KM)
    near = np.abs(total - limit) < 1e-9
    assert np.array_equal(np.isin(np.flatnonzero(~near), rows), total[~near] <= limit)
    assert np.array_equal(score, want[rows])


#: A ceiling shaped like the WonderNetwork one (as bench/bench_latency.py), 20 ms extra per landmark.
CEILING = lm.Calibration(
    ceiling=lm.RttCeiling(
        (0.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0, 10000.0, 12000.0),
        (12.0, 25.0, 30.0, 40.0, 50.0, 60.0, 75.0, 95.0, 120.0, 160.0, 200.0, 250.0, 300.0, 330.0),
        default_extra_ms=20.0,
    )
)


def test_the_ceiling_excess_is_the_reference() -> None:
    """``ceiling_excess`` computes a distance only where it may matter; its values are the full ones."""
    rng = np.random.default_rng(5)
    lat, lon = rng.uniform(-50, 65, 150), rng.uniform(-180, 180, 150)
    ms = lm.haversine_km(lat, lon, 50.11, 8.68) / 100.0 + rng.uniform(2.0, 40.0, 150)
    d = discs(tuple(RTTSample(lat=a, lon=b, ms=m) for a, b, m in zip(lat, lon, ms, strict=True)), CEILING)
    for xyz, extra in ((places().points.xyz[::7], PLACE_SLACK_KM), (unit_vectors(50.11, 8.68).reshape(1, 3), 0.0)):
        km = np.maximum(km_of_dot(dots(xyz, d.xyz)) - extra, 0.0)
        allowance = (d.ms - 2.0 * np.maximum(km - d.slack_km, 0.0) / FIBRE_KM_PER_MS).min(axis=1, keepdims=True)
        assert d.ceiling is not None and d.ceiling_extra is not None
        want = np.where(km <= 2000.0, d.ms - allowance - d.ceiling.at(km) - d.ceiling_extra, -np.inf)
        assert np.array_equal(d.ceiling_excess(xyz, extra, 2000.0), want)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(-60, 70), st.floats(-179, 179), st.floats(0.5, 120)), min_size=1, max_size=60))
def test_a_ceiling_proven_nil_is_nil(raw: list[tuple[float, float, float]]) -> None:
    """``Discs.ceiling_nil`` only names points whose full ceiling evidence is exactly 0."""
    d = discs(tuple(RTTSample(lat=a, lon=b, ms=m) for a, b, m in raw), CEILING)
    xyz = places().points.xyz[::11]
    tol = DEFAULT_TOLERANCE
    nil = d.ceiling_nil(xyz, tol, PLACE_SLACK_KM)
    assert (ref_ceiling(d, xyz, tol, PLACE_SLACK_KM)[nil] == 0.0).all()
