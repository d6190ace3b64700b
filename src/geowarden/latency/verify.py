"""Is a claimed location physically possible, given RTTs measured from several landmarks?

Each usable RTT sample (a landmark at lat, lon that measured ``ms`` to the client) becomes a
disc: the client is within ``bound.max_km(ms)`` of the landmark. The feasible region is where
the discs overlap; a claim (a point, or a country as the set of its populated places) is
feasible if it lies in that region.

Bad landmarks (a wrong listed location, a bound that one odd route beats) must not reject honest
clients, so the rule tolerates a little (``Tolerance``): a point is infeasible only when

- more than ``count`` discs exclude it (default: one disc may be wrong), or
- any disc excludes it by more than ``max_km`` (default 400 km: a tolerated disc may be off by
  a city or two, not by a continent).

The rule is monotone: every disc only grows with more RTT, so adding delay never turns a feasible
claim infeasible, and the feasible region only grows. ``violation_km`` is how far past that rule
the claim is (0 when feasible); for a country, the smallest over its places.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.latency.model import (
    EARTH_RADIUS_KM,
    HALF_CIRCUMFERENCE_KM,
    PHYSICAL,
    Calibration,
    FloatArray,
    cos_of_km,
    km_of_dot,
    unit_vectors,
)
from geowarden.latency.places import LATTICE_CELL_KM2, PointSet, places
from geowarden.model import RTTSample

KM_PER_DEGREE = EARTH_RADIUS_KM * np.pi / 180.0
#: Extra radius for country claims: a client may live this far from the nearest 15,000-people place.
PLACE_SLACK_KM = 50.0
REGION_CITIES = 10

TOO_FAR = "RTT_TOO_FAR_FROM_CLAIMED"
REGION = "RTT_REGION"
INSUFFICIENT = "RTT_INSUFFICIENT"


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
class Tolerance:
    """How many discs may exclude a feasible point, and by how much at most.

    With fewer than ``min_discs`` discs there is no majority to outvote a wrong one, and every
    disc is trusted as it is.
    """

    count: int = 1
    max_km: float = 400.0
    min_discs: int = 3

    def for_discs(self, n: int) -> Tolerance:
        return self if n >= self.min_discs else STRICT


STRICT = Tolerance(0, HALF_CIRCUMFERENCE_KM * 2, 0)
DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True, slots=True)
class Discs:
    """The usable constraints: one disc per landmark (its smallest RTT), unit vectors precomputed."""

    lat: FloatArray
    lon: FloatArray
    ms: FloatArray
    radius_km: FloatArray
    xyz: FloatArray
    unusable: int  # samples dropped: not finite, out of range, or from a landmark known to be inconsistent

    @property
    def n(self) -> int:
        return len(self.lat)


def usable(s: RTTSample) -> bool:
    return (
        bool(np.isfinite(s.lat) and np.isfinite(s.lon) and np.isfinite(s.ms))
        and -90.0 <= s.lat <= 90.0
        and -180.0 <= s.lon <= 180.0
        and s.ms > 0.0
    )


def discs(samples: Sequence[RTTSample], calibration: Calibration | None = None) -> Discs:
    """One disc per landmark position (the smallest RTT it measured: the others add nothing)."""
    best: dict[tuple[float, float], float] = {}
    dropped = 0
    for s in samples:
        if not usable(s) or (calibration is not None and calibration.is_inconsistent(s.lat, s.lon)):
            dropped += 1
            continue
        key = (float(s.lat), float(s.lon))
        best[key] = min(best.get(key, np.inf), float(s.ms))
    lat = np.array([k[0] for k in best], dtype=np.float64)
    lon = np.array([k[1] for k in best], dtype=np.float64)
    ms = np.array(list(best.values()), dtype=np.float64)
    if calibration is None:
        radius = np.asarray(PHYSICAL.max_km(ms), dtype=np.float64)
    else:
        radius = np.array(
            [calibration.bound_for(a, b).max_km(m) for a, b, m in zip(lat, lon, ms, strict=True)], dtype=np.float64
        )
    return Discs(lat, lon, ms, radius.reshape(-1), unit_vectors(lat, lon).reshape(-1, 3), dropped)


def robust_violation(excess_km: FloatArray, tol: Tolerance = DEFAULT_TOLERANCE) -> FloatArray:
    """Violation (km, >= 0) of the tolerance rule, from per-disc excess distances (last axis)."""
    n = excess_km.shape[-1]
    if n == 0:
        return np.zeros(excess_km.shape[:-1])
    tol = tol.for_discs(n)
    e = -np.sort(-excess_km, axis=-1)  # descending
    worst = e[..., 0] - tol.max_km
    beyond = e[..., tol.count] if n > tol.count else np.full(excess_km.shape[:-1], -np.inf)
    out: FloatArray = np.maximum(np.maximum(worst, beyond), 0.0)
    return out


def feasible_mask(xyz: FloatArray, d: Discs, tol: Tolerance, extra_km: float = 0.0) -> npt.NDArray[np.bool_]:
    """Which points (rows of ``xyz``) satisfy the tolerance rule: dot products, no trigonometry."""
    if d.n == 0:
        return np.ones(len(xyz), dtype=bool)
    tol = tol.for_discs(d.n)
    dots = d.xyz @ xyz.T  # (discs, points): reductions run along the long axis
    outside = np.count_nonzero(dots < cos_of_km(d.radius_km + extra_km)[:, None], axis=0)
    near = (dots >= cos_of_km(d.radius_km + extra_km + tol.max_km)[:, None]).all(axis=0)
    out: npt.NDArray[np.bool_] = (outside <= tol.count) & near
    return out


def point_violation(d: Discs, lat: float, lon: float, tol: Tolerance = DEFAULT_TOLERANCE) -> float:
    xyz = unit_vectors(lat, lon)
    excess = km_of_dot(d.xyz @ xyz) - d.radius_km
    return float(robust_violation(excess, tol))


def country_violation(
    d: Discs, code: str, tol: Tolerance = DEFAULT_TOLERANCE, slack_km: float = PLACE_SLACK_KM
) -> tuple[float, int]:
    """Smallest violation over the country's places, and the index (in ``places()``) of that place."""
    pl = places()
    idx = pl.by_country.get(code)
    if idx is None or len(idx) == 0:
        raise KeyError(code)
    xyz = pl.points.xyz[idx]
    ok = feasible_mask(xyz, d, tol, slack_km)
    if ok.any():
        return 0.0, int(idx[int(np.argmax(ok))])
    excess = km_of_dot(xyz @ d.xyz.T) - (d.radius_km + slack_km)
    v = robust_violation(excess, tol)
    k = int(np.argmin(v))
    return float(v[k]), int(idx[k])


def _candidates(ps: PointSet, d: Discs, tol: Tolerance, extra_km: float = 0.0) -> npt.NDArray[np.intp]:
    """Rows of ``ps`` that may be feasible: within the tightest disc (plus ``tol.max_km`` if a disc may be wrong)."""
    tol = tol.for_discs(d.n)
    j = int(np.argmin(d.radius_km))
    beyond = min(tol.max_km, HALF_CIRCUMFERENCE_KM) if tol.count > 0 else 0.0  # count 0: every disc holds
    reach = float(d.radius_km[j]) + beyond + extra_km
    if reach >= HALF_CIRCUMFERENCE_KM:
        return np.arange(len(ps.lat))
    half = reach / KM_PER_DEGREE
    lat0 = float(d.lat[j])
    band = ps.band(lat0 - half, lat0 + half)
    rows = np.arange(band.start, band.stop)
    near = ps.xyz[band] @ d.xyz[j] >= cos_of_km(reach)
    out: npt.NDArray[np.intp] = rows[near]
    return out


def _feasible_rows(
    ps: PointSet, d: Discs, tol: Tolerance, extra_km: float = 0.0
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Rows of ``ps`` that satisfy the tolerance rule, and how many discs exclude each of them.

    Candidates are first narrowed to the reach of the tightest disc (a latitude band, then one
    dot product each).
    """
    tol = tol.for_discs(d.n)
    rows = _candidates(ps, d, tol, extra_km)
    reach = cos_of_km(d.radius_km + extra_km + tol.max_km)[:, None]
    inside = cos_of_km(d.radius_km + extra_km)[:, None]
    dots = d.xyz @ ps.xyz[rows].T  # (discs, points): reductions run along the long axis
    near = (dots >= reach).all(axis=0)
    rows, dots = rows[near], dots[:, near]
    outside = np.count_nonzero(dots < inside, axis=0)
    ok = outside <= tol.count
    return rows[ok], outside[ok]


def _to_latlon(v: FloatArray) -> list[float]:
    v = v / np.linalg.norm(v)
    return [
        round(float(np.degrees(np.arcsin(np.clip(v[2], -1.0, 1.0)))), 3),
        round(float(np.degrees(np.arctan2(v[1], v[0]))), 3),
    ]


def region(d: Discs, tol: Tolerance = DEFAULT_TOLERANCE, place_slack_km: float = PLACE_SLACK_KM) -> dict[str, Any]:
    """The feasible region: countries and largest cities inside it, centroid, area, spread.

    Places are in it on the same terms as a country claim (``place_slack_km`` added to every
    disc), so ``countries`` lists exactly the country claims that would be feasible.

    ``consistent`` is false when no point satisfies every disc: some landmark is wrong (or the
    samples do not come from one place); ``tolerated`` then lists the discs the region ignores.
    """
    pl = places()
    if d.n == 0:
        return {"empty": True, "landmarks": 0}
    lat_ok, lat_out = _feasible_rows(pl.lattice, d, tol)
    pl_ok, pl_out = _feasible_rows(pl.points, d, tol, place_slack_km)
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
    centroid = _to_latlon(cen)
    radius = float(km_of_dot((pts @ (cen / np.linalg.norm(cen))).min()))
    strict = np.concatenate([lat_out == 0, pl_out == 0])
    pop = pl.population[pl_ok]
    if len(pl_ok) > REGION_CITIES:
        part = np.argpartition(-pop, REGION_CITIES)[:REGION_CITIES]
        top = pl_ok[part[np.argsort(-pop[part], kind="stable")]]
    else:
        top = pl_ok[np.argsort(-pop, kind="stable")]
    out.update(
        consistent=bool(strict.any()),
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
        centroid=centroid,
        radius_km=round(radius, 1),
        area_km2=round(len(lat_ok) * LATTICE_CELL_KM2, -2),
        tightest_km=round(float(d.radius_km.min()), 1),
    )
    if not strict.any():
        outside = (pts @ d.xyz.T) < cos_of_km(d.radius_km)
        ignored = np.flatnonzero(outside.all(axis=0))
        out["tolerated"] = [[float(d.lat[i]), float(d.lon[i]), float(d.ms[i])] for i in ignored]
    return out


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The answer for one claim. ``to_dict`` gives the CLI's JSON shape."""

    feasible: bool
    violation_km: float
    region: dict[str, Any]
    reasons: tuple[str, ...]
    landmarks: int = 0  # discs used
    nearest_place: str | None = None  # for a country claim: the place of least violation

    @property
    def sufficient(self) -> bool:
        return INSUFFICIENT not in self.reasons

    def to_dict(self) -> dict[str, Any]:
        return {
            "feasible": self.feasible,
            "violation_km": round(self.violation_km, 1),
            "region": self.region,
            "reasons": list(self.reasons),
        }


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

    Without usable samples the claim cannot be refuted: ``feasible`` is true and the reason is
    ``RTT_INSUFFICIENT``.
    """
    if isinstance(claimed, ClaimedCountry) and claimed.code not in places().by_country:
        raise KeyError(claimed.code)
    d = discs(samples, calibration)
    if d.n == 0:
        reg: dict[str, Any] = {"empty": True, "landmarks": 0, "unusable_samples": d.unusable}
        return VerifyResult(True, 0.0, reg, (INSUFFICIENT,), 0)
    nearest: str | None = None
    if isinstance(claimed, ClaimedPoint):
        violation = point_violation(d, claimed.lat, claimed.lon, tolerance)
    else:
        violation, k = country_violation(d, claimed.code, tolerance, place_slack_km)
        nearest = str(places().name[k])
    feasible = violation <= 0.0
    reg = region(d, tolerance, place_slack_km) if with_region else {}
    reasons: tuple[str, ...] = (REGION,) if feasible else (TOO_FAR, REGION)
    if not with_region:
        reasons = () if feasible else (TOO_FAR,)
    return VerifyResult(feasible, violation, reg, reasons, d.n, nearest)
