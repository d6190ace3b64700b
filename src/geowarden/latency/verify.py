"""Is a claimed location physically possible, given RTTs measured from several landmarks?

Each usable RTT sample (a landmark at lat, lon that measured ``ms`` to the client) becomes a
disc: the client is within ``bound.max_km(ms)`` of the landmark. A claim (a point, or a country
as the set of its populated places) is judged by how much landmark weight excludes it and by how
far (``rule``): the answer is ``feasible`` true, false, or None (inconclusive, ``RTT_INCONCLUSIVE``)
when

- the violations are within what honest routes produce (``rule.Tolerance``),
- fewer than ``Tolerance.min_discs`` landmarks answered, or
- the discs contradict each other: no point on Earth escapes the rejection rule (the region is
  empty; a misplaced landmark, or samples not all from one place). The measurement then proves
  nothing about the claim.

The feasible region is every point the rule does not rule out. ``violation_km`` is how far past
the rejection rule the claim is (0 unless false); for a country, the smallest over its places.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.latency.bounds import BoolArray, Cap, ceiling_nil, dot, dots, dots_of, gathered_score
from geowarden.latency.ceiling import RttCeiling
from geowarden.latency.model import (
    EARTH_RADIUS_KM,
    FIBRE_KM_PER_MS,
    HALF_CIRCUMFERENCE_KM,
    PHYSICAL,
    Calibration,
    FloatArray,
    cos_of_km,
    km_of_dot,
    unit_vectors,
)
from geowarden.latency.places import LATTICE_CELL_KM2, PointSet, places
from geowarden.latency.rule import (
    DEFAULT_TOLERANCE,
    FALSE,
    NULL,
    STRICT,
    TRUE,
    Tolerance,
    ceiling_against,
    confidence,
    outcome,
    violation_km,
)
from geowarden.model import RTTSample

__all__ = ["DEFAULT_TOLERANCE", "STRICT", "Tolerance"]

KM_PER_DEGREE = EARTH_RADIUS_KM * np.pi / 180.0
#: Extra radius for country claims: a client may live this far from the nearest 15,000-people place.
PLACE_SLACK_KM = 50.0
REGION_CITIES = 10
#: Places of a country whose violation is computed exactly (those with the least evidence against).
VIOLATION_PLACES = 20
#: Margin (km) on the reach in ``Discs.ceiling_nil``: a landmark this much out of reach is counted in.
REACH_MARGIN_KM = 1.0

TOO_FAR = "RTT_TOO_FAR_FROM_CLAIMED"
REGION = "RTT_REGION"
INSUFFICIENT = "RTT_INSUFFICIENT"
INCONCLUSIVE = "RTT_INCONCLUSIVE"
#: Why an answer is inconclusive (``VerifyResult.why``).
WHY_FEW = "too few landmarks"
WHY_EMPTY = "no point on Earth fits the discs"
WHY_HONEST = "violations within what honest routes produce"


@dataclass(frozen=True, slots=True)
class ClaimedPoint:
    lat: float
    lon: float

    def to_json(self) -> list[float]:
        return [self.lat, self.lon]


@dataclass(frozen=True, slots=True)
class ClaimedCountry:
    code: str  # ISO 3166-1 alpha-2, upper case

    def to_json(self) -> str:
        return self.code


Claimed = ClaimedPoint | ClaimedCountry


@dataclass(frozen=True, slots=True)
class Claim:
    """One location claim and the RTTs that should support it."""

    claimed: Claimed
    rtt: tuple[RTTSample, ...]


@dataclass(frozen=True, slots=True)
class Discs:
    """The usable constraints: one disc per landmark (its smallest RTT), unit vectors precomputed."""

    lat: FloatArray
    lon: FloatArray
    ms: FloatArray
    radius_km: FloatArray
    xyz: FloatArray
    weight: FloatArray  # the landmark's reliability (1 unless a calibration says otherwise)
    unusable: int  # samples dropped: not finite, out of range, or from a landmark known to be inconsistent
    speed: FloatArray | None = None  # each disc's one-way speed (km/ms); None: 2/3 c
    slack_km: float = PHYSICAL.slack_km
    ceiling: RttCeiling | None = None  # the calibration's expected-RTT ceiling; None: no such evidence
    ceiling_extra: FloatArray | None = None  # each landmark's own extra over the ceiling's base (ms)

    @property
    def n(self) -> int:
        return len(self.lat)

    @property
    def total_weight(self) -> float:
        return float(self.weight.sum())

    def excess(self, xyz: FloatArray, extra_km: float = 0.0) -> FloatArray:
        """(points, discs): how far outside each disc each point is (negative: inside)."""
        out: FloatArray = km_of_dot(dots(xyz, self.xyz)) - (self.radius_km + extra_km)
        return out

    def ceiling_excess(self, xyz: FloatArray, extra_km: float = 0.0, reach_km: float = np.inf) -> FloatArray:
        """(points, discs): how far (ms) each RTT is above its landmark's ceiling for a client at each point.

        The client's last mile is unknown and adds to every RTT alike, so each point is granted
        the largest one its discs allow: ``a = min_i (ms_i - floor_i)``, ``floor_i`` the RTT the
        disc's own bound needs for that distance. Adding the same delay to every RTT raises ``a``
        by as much and leaves the excess unchanged. ``extra_km``: the client may be that far from
        the point (a country's places), so distances shrink by as much. A landmark farther than
        ``reach_km`` from the point gets ``-inf`` (no evidence).
        """
        out: FloatArray = np.full((len(xyz), self.n), -np.inf)
        if self.ceiling is None or self.n == 0 or len(xyz) == 0:
            return out
        cols, sub = self._ceiling_cols(xyz, extra_km, reach_km)
        out[:, cols] = sub
        return out

    def _ceiling_cols(
        self, xyz: FloatArray, extra_km: float, reach_km: float
    ) -> tuple[npt.NDArray[np.intp], FloatArray]:
        """``ceiling_excess`` of the landmarks in reach of some point (the other columns: ``-inf``),
        computing distances only to those that may be in reach or set some point's allowance."""
        assert self.ceiling is not None
        speed = np.full(self.n, FIBRE_KM_PER_MS) if self.speed is None else self.speed

        def left(km_raw: FloatArray, i: npt.NDArray[np.intp]) -> FloatArray:  # ms_i - floor_i, as ceiling_excess
            return self.ms[i] - 2.0 * np.maximum(np.maximum(km_raw - extra_km, 0.0) - self.slack_km, 0.0) / speed[i]

        every = np.arange(self.n)
        lo, hi = Cap.around(xyz).distance_range(self.xyz)
        # no point's allowance is above min(left(lo)): a landmark always above it sets none
        need = np.flatnonzero((left(hi, every) <= left(lo, every).min()) | (np.maximum(lo - extra_km, 0.0) <= reach_km))
        km_raw = km_of_dot(dots_of(xyz, self.xyz, need))
        allowance = left(km_raw, need).min(axis=1, keepdims=True)
        km = np.maximum(km_raw - extra_km, 0.0)
        inner = np.flatnonzero((km <= reach_km).any(axis=0))
        cols = need[inner]
        sub = km[:, inner]
        own = np.zeros(len(cols)) if self.ceiling_extra is None else self.ceiling_extra[cols]
        excess = np.where(sub <= reach_km, self.ms[cols] - allowance - self.ceiling.at(sub) - own, -np.inf)
        return cols, excess

    def ceiling_score(self, xyz: FloatArray, tol: Tolerance, extra_km: float = 0.0) -> FloatArray:
        """``rule.ceiling_against`` for each point (0 without a ceiling or with ``ceiling_weight`` 0)."""
        if self.ceiling is None or tol.ceiling_weight == 0.0 or self.n == 0 or len(xyz) == 0:
            return np.zeros(len(xyz))
        cols, excess = self._ceiling_cols(xyz, extra_km, tol.ceiling_reach_km)  # the others add nothing
        if len(cols) == 0:
            return np.zeros(len(xyz))
        full = np.full((len(xyz), self.n), -np.inf)  # the layout ceiling_against always had (sums in memory order)
        full[:, cols] = excess
        return ceiling_against(full[:, cols], self.weight[cols], tol)

    def against(self, xyz: FloatArray, tol: Tolerance, extra_km: float = 0.0, limit: float | None = None) -> FloatArray:
        """``rule.against`` for each point (rows of ``xyz``), the discs added tightest first.

        With ``limit``, the tightest discs are scored first and a point already past ``limit`` is
        not scored further (its value is then only known to exceed ``limit``): most of a country
        or of the globe is ruled out by a handful of discs. Summed as ``bounds.gathered_score``.
        """
        order = np.argsort(self.radius_km, kind="stable")
        score = np.zeros(len(xyz))
        alive = np.arange(len(xyz))
        for chunk in (order[:8], order[8:40], order[40:]):
            if len(chunk) == 0 or len(alive) == 0:
                continue
            d, r = dots(xyz[alive], self.xyz[chunk]), self.radius_km[chunk] + extra_km
            score[alive] = gathered_score(d, r, tol.severity_km, self.weight[chunk], score[alive])
            if limit is not None:
                alive = alive[score[alive] <= limit]
        return score

    def ceiling_nil(self, xyz: FloatArray, tol: Tolerance, extra_km: float) -> BoolArray:
        """Points (rows of ``xyz``) whose ceiling evidence is exactly 0 (``bounds.ceiling_nil``)."""
        assert self.ceiling is not None
        speed = np.full(self.n, FIBRE_KM_PER_MS) if self.speed is None else self.speed
        own = np.zeros(self.n) if self.ceiling_extra is None else self.ceiling_extra
        grant = float((self.ms - 2.0 * np.maximum(self.radius_km - self.slack_km, 0.0) / speed).min())
        by = np.argsort(own - self.ms, kind="stable")  # the slowest landmark first
        dd, r = dots(xyz, self.xyz[by]), (self.radius_km + extra_km)[by]
        near = dd >= cos_of_km(tol.ceiling_reach_km + extra_km + REACH_MARGIN_KM)  # every landmark in reach
        first = near.argmax(axis=1)
        slowest = np.where(near[np.arange(len(dd)), first], (self.ms - own)[by][first], -np.inf)
        flat = np.flatnonzero(dd < cos_of_km(r))  # the discs each point is outside of
        worst = np.zeros(len(dd))  # the largest excess of each point (km)
        np.maximum.at(worst, flat // self.n, km_of_dot(dd.ravel()[flat]) - r[flat % self.n])
        return ceiling_nil(slowest, worst, grant, float(speed.min()), min(self.ceiling.ms) + self.ceiling.add_ms)


def usable(s: RTTSample) -> bool:
    return (
        math.isfinite(s.lat)
        and math.isfinite(s.lon)
        and math.isfinite(s.ms)  # as np.isfinite, 10x faster on a float
        and -90.0 <= s.lat <= 90.0
        and -180.0 <= s.lon <= 180.0
        and s.ms > 0.0
    )


def discs(samples: Sequence[RTTSample], calibration: Calibration | None = None) -> Discs:
    """One disc per landmark position (the smallest RTT it measured: the others add nothing)."""
    best: dict[tuple[float, float], float] = {}
    dropped = 0
    bad = calibration.is_inconsistent if calibration is not None and calibration.inconsistent else None
    for s in samples:
        if not usable(s) or (bad is not None and bad(s.lat, s.lon)):
            dropped += 1
            continue
        key = (float(s.lat), float(s.lon))
        best[key] = min(best.get(key, np.inf), float(s.ms))
    lat = np.array([k[0] for k in best], dtype=np.float64)
    lon = np.array([k[1] for k in best], dtype=np.float64)
    ms = np.array(list(best.values()), dtype=np.float64)
    xyz = unit_vectors(lat, lon).reshape(-1, 3)
    if calibration is None:
        radius = np.asarray(PHYSICAL.max_km(ms), dtype=np.float64)
        return Discs(lat, lon, ms, radius.reshape(-1), xyz, np.ones(len(ms)), dropped)
    speed, slack, weight = calibration.arrays(lat, lon)
    radius = np.minimum(speed * np.maximum(ms, 0.0) / 2.0 + slack, HALF_CIRCUMFERENCE_KM)  # DistanceBound.max_km
    ceil = calibration.ceiling
    pos = zip(lat.tolist(), lon.tolist(), strict=True)
    own = None if ceil is None else np.array([ceil.extra_for(a, b) for a, b in pos], dtype=np.float64)
    return Discs(lat, lon, ms, radius, xyz, weight, dropped, speed, calibration.default.slack_km, ceil, own)


def _limit(d: Discs, tol: Tolerance) -> float:
    return tol.reject_at(d.total_weight)


def _candidates(ps: PointSet, d: Discs, tol: Tolerance, extra_km: float = 0.0) -> npt.NDArray[np.intp]:
    """Rows of ``ps`` that the rule may not rule out.

    The tightest discs whose weight exceeds the rejection threshold: a point beyond
    ``severity_km`` of every one of them has more evidence against it than the threshold.
    """
    order = np.argsort(d.radius_km, kind="stable")
    cum = np.cumsum(d.weight[order])
    k = int(np.searchsorted(cum, _limit(d, tol), side="right"))
    if k >= d.n:
        return np.arange(len(ps.lat))
    keep = np.zeros(len(ps.lat), dtype=bool)
    for j in order[: k + 1]:
        reach = float(d.radius_km[j]) + tol.severity_km + extra_km
        half = reach / KM_PER_DEGREE
        band = ps.band(float(d.lat[j]) - half, float(d.lat[j]) + half)
        keep[band] |= dot(ps.xyz[band], d.xyz[j]) >= cos_of_km(reach)
    return np.flatnonzero(keep)


def _open_rows(
    ps: PointSet, d: Discs, tol: Tolerance, extra_km: float = 0.0
) -> tuple[npt.NDArray[np.intp], FloatArray]:
    """Rows of ``ps`` that the rule does not rule out, and the evidence against each."""
    rows = _candidates(ps, d, tol, extra_km)
    score = d.against(ps.xyz[rows], tol, extra_km, _limit(d, tol))
    ok = score <= _limit(d, tol)
    rows, score = rows[ok], score[ok]  # a score of 0: inside every disc
    if d.ceiling is not None and tol.ceiling_weight > 0.0 and len(rows):
        # the ceiling counts only landmarks within reach, each at most its weight (<= 1), less the
        # dropped ones: a point that stays under the limit even so is not scored (the exact score
        # needs every distance)
        xyz = ps.xyz[rows]
        k = (dots(xyz, d.xyz) >= cos_of_km(tol.ceiling_reach_km + extra_km)).sum(axis=1)
        kept = k - np.where(k > 0, np.maximum(1, np.ceil(tol.ceiling_trim * k)), 0)
        maybe = np.flatnonzero(score + tol.ceiling_weight * kept > _limit(d, tol))
        maybe = maybe[~d.ceiling_nil(xyz[maybe], tol, extra_km)]  # their score stays as it is
        ok = np.ones(len(rows), dtype=bool)
        ok[maybe] = score[maybe] + d.ceiling_score(xyz[maybe], tol, extra_km) <= _limit(d, tol)
        rows, score = rows[ok], score[ok]
    return rows, score


def feasible_mask(xyz: FloatArray, d: Discs, tol: Tolerance, extra_km: float = 0.0) -> npt.NDArray[np.bool_]:
    """Which points (rows of ``xyz``) the rule does not rule out."""
    if d.n == 0:
        return np.ones(len(xyz), dtype=bool)
    score = d.against(xyz, tol, extra_km, _limit(d, tol)) + d.ceiling_score(xyz, tol, extra_km)
    out: npt.NDArray[np.bool_] = score <= _limit(d, tol)
    return out


def region_is_empty(d: Discs, tol: Tolerance) -> bool:
    """No lattice point or populated place escapes the rule: the discs contradict each other."""
    pl = places()
    for ps, extra in ((pl.lattice, 0.0), (pl.points, PLACE_SLACK_KM)):
        if len(_open_rows(ps, d, tol, extra)[0]):
            return False
    return True


def _to_latlon(v: FloatArray) -> list[float]:
    v = v / np.linalg.norm(v)
    return [
        round(float(np.degrees(np.arcsin(np.clip(v[2], -1.0, 1.0)))), 3),
        round(float(np.degrees(np.arctan2(v[1], v[0]))), 3),
    ]


def region(d: Discs, tol: Tolerance = DEFAULT_TOLERANCE, place_slack_km: float = PLACE_SLACK_KM) -> dict[str, Any]:
    """The feasible region: countries and largest cities the rule does not rule out, centroid, area.

    Places are in it on the same terms as a country claim (``place_slack_km`` added to every
    disc), so ``countries`` lists exactly the country claims that would not be false.

    ``consistent`` is false when no point lies inside every disc: some landmark is wrong (or the
    samples do not come from one place); ``tolerated`` then lists the discs the region ignores.
    """
    pl = places()
    if d.n == 0:
        return {"empty": True, "landmarks": 0}
    lat_ok, lat_worst = _open_rows(pl.lattice, d, tol)
    pl_ok, pl_worst = _open_rows(pl.points, d, tol, place_slack_km)
    pts = np.concatenate([pl.lattice.xyz[lat_ok], pl.points.xyz[pl_ok]])
    out: dict[str, Any] = {"empty": len(pts) == 0, "landmarks": d.n}
    if d.unusable:
        out["unusable_samples"] = d.unusable
    if len(pts) == 0:
        out.update(consistent=False, countries=[], cities=[], centroid=None, radius_km=None, area_km2=0.0)
        return out
    cen = pl.lattice.xyz[lat_ok].sum(axis=0) if len(lat_ok) else pl.points.xyz[pl_ok].sum(axis=0)
    if float(np.linalg.norm(cen)) < 1e-9:  # the whole globe: no meaningful centre
        cen = pts.sum(axis=0) + np.array([0.0, 0.0, 1e-6])
    radius = float(km_of_dot(dot(pts, cen / np.linalg.norm(cen)).min()))
    strict = bool((lat_worst <= 0.0).any() or (pl_worst <= 0.0).any())  # some point inside every disc
    pop = pl.population[pl_ok]
    if len(pl_ok) > REGION_CITIES:
        part = np.argpartition(-pop, REGION_CITIES)[:REGION_CITIES]
        top = pl_ok[part[np.argsort(-pop[part], kind="stable")]]
    else:
        top = pl_ok[np.argsort(-pop, kind="stable")]
    out.update(
        consistent=strict,
        countries=pl.countries_of(pl_ok),
        cities=[
            {
                "name": str(pl.name[k]),
                "country": str(pl.country[k]),
                "lat": round(float(pl.points.lat[k]), 4),
                "lon": round(float(pl.points.lon[k]), 4),
            }
            for k in top
        ],
        centroid=_to_latlon(cen),
        radius_km=round(radius, 1),
        area_km2=round(len(lat_ok) * LATTICE_CELL_KM2, -2),
        tightest_km=round(float(d.radius_km.min()), 1),
    )
    if not strict:
        outside = dots(pts, d.xyz) < cos_of_km(d.radius_km)
        ignored = np.flatnonzero(outside.all(axis=0))
        out["tolerated"] = [[float(d.lat[i]), float(d.lon[i]), float(d.ms[i])] for i in ignored]
    return out


@dataclass(frozen=True, slots=True)
class Assessment:
    """The rule's answer for one claim, before any region is drawn."""

    answer: int  # rule.TRUE, NULL or FALSE
    score: float  # weighted evidence against the claim (for a country: its best place)
    violation_km: float
    place: int | None = None  # for a country claim: index in ``places()`` of its best place
    ceiling: float = 0.0  # the expected-RTT part of ``score``


def assess(
    d: Discs, claimed: Claimed, tol: Tolerance = DEFAULT_TOLERANCE, place_slack_km: float = PLACE_SLACK_KM
) -> Assessment:
    """Score a claim against the discs (no emptiness check: see ``verify``). Unknown country: ``KeyError``."""
    extra = 0.0
    if isinstance(claimed, ClaimedPoint):
        xyz = unit_vectors(claimed.lat, claimed.lon).reshape(1, 3)
        idx = None
    else:
        pl = places()
        idx = pl.by_country.get(claimed.code)
        if idx is None or len(idx) == 0:
            raise KeyError(claimed.code)
        xyz, extra = pl.points.xyz[idx], place_slack_km
    ceiling = d.ceiling_score(xyz, tol, extra)
    score = d.against(xyz, tol, extra) + ceiling
    ans = outcome(score, d.total_weight, d.n, tol, ceiling)
    k = int(np.lexsort((score, -ans))[0])  # the best answer, then the least evidence against
    best = int(ans[k])
    viol = 0.0
    if best == FALSE:
        near = np.argsort(score, kind="stable")[:VIOLATION_PLACES]
        viol = float(violation_km(d.excess(xyz[near], extra), d.weight, tol, ceiling=ceiling[near]).min())
    return Assessment(best, float(score[k]), viol, None if idx is None else int(idx[k]), float(ceiling[k]))


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The answer for one claim. ``to_dict`` gives the CLI's JSON shape.

    ``feasible`` is True, False, or None when inconclusive (``why`` says which way).
    """

    feasible: bool | None
    violation_km: float
    region: dict[str, Any]
    reasons: tuple[str, ...]
    landmarks: int = 0  # discs used
    nearest_place: str | None = None  # for a country claim: the place of least violation
    confidence: float = 0.5
    score: float = 0.0  # weighted evidence against the claim
    why: str | None = None

    @property
    def sufficient(self) -> bool:
        return INSUFFICIENT not in self.reasons

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "feasible": self.feasible,
            "confidence": self.confidence,
            "violation_km": round(self.violation_km, 1),
            "landmarks": self.landmarks,
            "region": self.region,
            "reasons": list(self.reasons),
        }
        if self.why is not None:
            out["inconclusive"] = self.why
        return out


def verify(
    samples: Sequence[RTTSample],
    claimed: Claimed,
    *,
    calibration: Calibration | None = None,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    with_region: bool = True,
    place_slack_km: float = PLACE_SLACK_KM,
) -> VerifyResult:
    """Check one claim against RTT samples. A country code with no known places raises ``KeyError``.

    Without usable samples the claim cannot be refuted: ``feasible`` is None and the reasons
    are ``RTT_INSUFFICIENT`` and ``RTT_INCONCLUSIVE``.
    """
    if isinstance(claimed, ClaimedCountry) and claimed.code not in places().by_country:
        raise KeyError(claimed.code)
    d = discs(samples, calibration)
    if d.n == 0:
        reg: dict[str, Any] = {"empty": True, "landmarks": 0, "unusable_samples": d.unusable}
        return VerifyResult(None, 0.0, reg, (INSUFFICIENT, INCONCLUSIVE), 0, why=WHY_FEW)
    a = assess(d, claimed, tolerance, place_slack_km)
    nearest = None if a.place is None else str(places().name[a.place])
    reg = region(d, tolerance, place_slack_km) if with_region else {}
    answer, why = a.answer, None
    empty = bool(reg.get("empty")) if with_region else (answer == FALSE and region_is_empty(d, tolerance))
    if answer == FALSE and empty:
        answer, why = NULL, WHY_EMPTY
    elif answer == NULL:
        why = WHY_FEW if d.n < tolerance.min_discs and a.score > tolerance.reject_at(d.total_weight) else WHY_HONEST
    feasible = {TRUE: True, FALSE: False, NULL: None}[answer]
    reasons: list[str] = [] if answer == TRUE else [TOO_FAR] if answer == FALSE else [INCONCLUSIVE]
    if with_region:
        reasons.append(REGION)
    conf = confidence(answer, a.score, d.total_weight, tolerance)
    viol = a.violation_km if answer == FALSE else 0.0
    return VerifyResult(feasible, viol, reg, tuple(reasons), d.n, nearest, conf, a.score, why)
