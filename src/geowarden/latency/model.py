"""The physical model: how far away a client can be, given a round-trip time.

A packet cannot cross fibre faster than light in glass, about two thirds of *c*: ~200 km per
millisecond one way, ~100 km per millisecond of round-trip time. A client can add delay (slow
Wi-Fi, a busy phone, a deliberate sleep) but never remove it, so an RTT gives only an *upper*
bound on distance: the client lies inside a disc around the landmark that measured it. Physical
lower bounds ("a large RTT means far away") are unsafe against honest clients on slow last miles
and are never used; the expected-RTT ceiling below is their weighed, statistical form.

Two kinds of bound, both one-way speeds applied to half the RTT plus a small slack for
coordinate error (a "city" location vs the real data centre):

- ``PHYSICAL``: 2/3 c for every landmark. Needs no calibration; what an unknown landmark gets.
- per-landmark calibration (``calibrate``), after CBG (Gueye et al. 2006): each landmark's
  fastest observed speed to the other, *consistent* landmarks of a mesh, times a safety margin,
  never above 2/3 c. Most landmarks never see 2/3 c (routes detour; only some long submarine
  cables run nearly straight), so most discs shrink by about a fifth.

A third, statistical bound (``latency.ceiling.RttCeiling``, built by ``rtt_ceiling``): how slowly honest
clients near a landmark answer it. A client that claims to be near a landmark but answers it far
more slowly is evidence against the claim, never a proof: the rule weighs it
(``rule.Tolerance.ceiling_weight``).

Landmarks whose listed location is wrong show up as pairs that are faster than light between
their listed cities. ``find_inconsistent`` removes them from a mesh one at a time, the worst
offender first, until every remaining pair obeys the physical bound.

Everything here is numpy-vectorised and free of I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from geowarden.latency.ceiling import RttCeiling
from geowarden.latency.ceiling import build as build_ceiling

FloatArray = npt.NDArray[np.float64]

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
HALF_CIRCUMFERENCE_KM = math.pi * EARTH_RADIUS_KM  # no two points on Earth are further apart
C_KM_PER_MS = 299.792458  # speed of light in vacuum
#: 2/3 c, the usual speed of light in fibre (refractive index ~1.5), one way.
FIBRE_KM_PER_MS = C_KM_PER_MS * 2.0 / 3.0


def haversine_km(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in km; numpy broadcasting over any of the arguments."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=np.float64) - np.asarray(lon1, dtype=np.float64))
    h = np.sin(dp / 2.0) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2.0) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def unit_vectors(lat: Any, lon: Any) -> FloatArray:
    """Points on the unit sphere, shape (..., 3): distance tests become dot products."""
    la, lo = np.radians(np.asarray(lat, dtype=np.float64)), np.radians(np.asarray(lon, dtype=np.float64))
    cl = np.cos(la)
    out: FloatArray = np.stack([cl * np.cos(lo), cl * np.sin(lo), np.sin(la)], axis=-1)
    return out


def cos_of_km(km: Any) -> FloatArray:
    """cos(angle) of a great-circle distance; distances past half the globe give -1 (everything)."""
    angle = np.minimum(np.asarray(km, dtype=np.float64), HALF_CIRCUMFERENCE_KM) / EARTH_RADIUS_KM
    out: FloatArray = np.cos(angle)
    return out


def km_of_dot(dot: Any) -> FloatArray:
    """Great-circle distance in km from the dot product of two unit vectors."""
    out: FloatArray = np.arccos(np.clip(dot, -1.0, 1.0)) * EARTH_RADIUS_KM
    return out


@dataclass(frozen=True, slots=True)
class DistanceBound:
    """Upper bound on the distance a reply can have travelled: ``speed * rtt / 2 + slack``.

    ``speed_km_per_ms`` is one way and capped at 2/3 c; ``slack_km`` absorbs landmark coordinate
    error (a city centre instead of the data centre) and is added whatever the RTT.
    """

    speed_km_per_ms: float = FIBRE_KM_PER_MS
    slack_km: float = 25.0

    def __post_init__(self) -> None:
        if not (0.0 < self.speed_km_per_ms <= FIBRE_KM_PER_MS + 1e-9):
            raise ValueError(f"speed must be in (0, {FIBRE_KM_PER_MS:.2f}] km/ms")
        if not self.slack_km >= 0.0:
            raise ValueError("slack must be >= 0 km")

    def max_km(self, rtt_ms: Any) -> Any:
        """Largest possible distance (km) for the RTT(s), never more than half the globe."""
        d = self.speed_km_per_ms * np.maximum(np.asarray(rtt_ms, dtype=np.float64), 0.0) / 2.0 + self.slack_km
        return np.minimum(d, HALF_CIRCUMFERENCE_KM)


#: The naive bound: 2/3 c, nothing added. For comparison only.
NAIVE = DistanceBound(FIBRE_KM_PER_MS, 0.0)
#: The bound an uncalibrated landmark gets: 2/3 c plus 25 km of coordinate slack.
PHYSICAL = DistanceBound(FIBRE_KM_PER_MS, 25.0)

#: Calibration defaults, chosen on the WonderNetwork mesh (docs/latency.md, bench/eval_latency.py).
DEFAULT_MARGIN = 0.10  # per-landmark speed x (1 + margin)
DEFAULT_MIN_PAIRS = 8  # fewer consistent pairs than this: the landmark stays on PHYSICAL
#: Reliability of a landmark kept by ``find_inconsistent`` although one of its pairs beats 2/3 c:
#: the pair proves that one of the two is misplaced, and the other may be this one.
SUSPECT_RELIABILITY = 0.5


def rtt_ceiling(
    lat: Sequence[float] | FloatArray,
    lon: Sequence[float] | FloatArray,
    rtt_ms: FloatArray,
    *,
    landmarks: Sequence[int] | None = None,
    inconsistent: Sequence[int] | None = None,
) -> RttCeiling | None:
    """The expected-RTT ceiling of a mesh (``ceiling.build``), its inconsistent members left out
    (``find_inconsistent`` unless given). ``landmarks``: whose per-landmark extras to keep."""
    la, lo = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    bad = [i for i, _ in find_inconsistent(la, lo, rtt_ms)] if inconsistent is None else list(inconsistent)
    return build_ceiling(la, lo, pair_distances(la, lo), rtt_ms, landmarks=landmarks, skip=bad)


@dataclass(frozen=True, slots=True)
class Landmark:
    """A calibrated landmark: where it is and the distance bound its RTTs get."""

    lat: float
    lon: float
    bound: DistanceBound
    name: str = ""
    pairs: int = 0  # consistent mesh pairs the calibration saw
    reliability: float = 1.0  # weight of its disc in the rule (``rule.against``); below 1: suspect


def _key(lat: float, lon: float) -> tuple[int, int]:
    """Landmarks are matched by position to 0.01 degree (~1 km)."""
    return (round(lat * 100), round(lon * 100))


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-landmark bounds from a mesh, and the landmarks found inconsistent (never trusted).

    ``bound_for`` gives a calibrated landmark its own bound and any other position ``default``.
    """

    landmarks: tuple[Landmark, ...] = ()
    inconsistent: tuple[Landmark, ...] = ()
    default: DistanceBound = PHYSICAL
    margin: float = DEFAULT_MARGIN
    ceiling: RttCeiling | None = None  # None: no expected-RTT evidence (``rtt_ceiling``)
    _index: dict[tuple[int, int], Landmark] = field(default_factory=dict, init=False, repr=False, compare=False)
    _bad: frozenset[tuple[int, int]] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {_key(lm.lat, lm.lon): lm for lm in self.landmarks})
        object.__setattr__(self, "_bad", frozenset(_key(lm.lat, lm.lon) for lm in self.inconsistent))

    def bound_for(self, lat: float, lon: float) -> DistanceBound:
        lm = self._index.get(_key(lat, lon))
        return lm.bound if lm is not None else self.default

    def arrays(self, lat: FloatArray, lon: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Speed (km/ms), slack (km) and reliability of each landmark position, one lookup each."""
        found = [self._index.get(_key(a, b)) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
        d = self.default
        speed = np.array([d.speed_km_per_ms if x is None else x.bound.speed_km_per_ms for x in found])
        slack = np.array([d.slack_km if x is None else x.bound.slack_km for x in found])
        weight = np.array([1.0 if x is None else x.reliability for x in found])
        return speed.astype(np.float64), slack.astype(np.float64), weight.astype(np.float64)

    def reliability_for(self, lat: float, lon: float) -> float:
        lm = self._index.get(_key(lat, lon))
        return lm.reliability if lm is not None else 1.0

    def is_inconsistent(self, lat: float, lon: float) -> bool:
        return _key(lat, lon) in self._bad

    def to_dict(self) -> dict[str, Any]:
        def one(lm: Landmark) -> dict[str, Any]:
            return {
                "name": lm.name,
                "lat": lm.lat,
                "lon": lm.lon,
                "speed_km_per_ms": round(lm.bound.speed_km_per_ms, 3),
                "slack_km": lm.bound.slack_km,
                "pairs": lm.pairs,
                "reliability": lm.reliability,
            }

        out: dict[str, Any] = {
            "margin": self.margin,
            "default": {"speed_km_per_ms": self.default.speed_km_per_ms, "slack_km": self.default.slack_km},
            "landmarks": [one(lm) for lm in self.landmarks],
            "inconsistent": [one(lm) for lm in self.inconsistent],
        }
        if self.ceiling is not None:
            out["ceiling"] = self.ceiling.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of ``to_dict`` (a calibration saved as JSON by an operator)."""
        d = data.get("default", {})
        speed = min(FIBRE_KM_PER_MS, float(d.get("speed_km_per_ms", FIBRE_KM_PER_MS)))
        default = DistanceBound(speed, float(d.get("slack_km", 25.0)))

        def one(x: dict[str, Any]) -> Landmark:
            return Landmark(
                lat=float(x["lat"]),
                lon=float(x["lon"]),
                bound=DistanceBound(
                    min(FIBRE_KM_PER_MS, float(x["speed_km_per_ms"])), float(x.get("slack_km", default.slack_km))
                ),
                name=str(x.get("name", "")),
                pairs=int(x.get("pairs", 0)),
                reliability=min(1.0, max(0.0, float(x.get("reliability", 1.0)))),
            )

        return cls(
            landmarks=tuple(one(x) for x in data.get("landmarks", [])),
            inconsistent=tuple(one(x) for x in data.get("inconsistent", [])),
            default=default,
            margin=float(data.get("margin", DEFAULT_MARGIN)),
            ceiling=RttCeiling.from_dict(data["ceiling"]) if data.get("ceiling") else None,
        )


def pair_distances(lat: Sequence[float] | FloatArray, lon: Sequence[float] | FloatArray) -> FloatArray:
    """All pairwise great-circle distances (km), an (n, n) matrix."""
    la, lo = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    out: FloatArray = haversine_km(la[:, None], lo[:, None], la[None, :], lo[None, :])
    return out


def violations(dist_km: FloatArray, rtt_ms: FloatArray, bound: DistanceBound = PHYSICAL) -> npt.NDArray[np.bool_]:
    """Pairs whose listed distance exceeds what the RTT allows (NaN RTT: unmeasured, never a violation)."""
    with np.errstate(invalid="ignore"):
        out: npt.NDArray[np.bool_] = np.nan_to_num(dist_km) > np.where(np.isnan(rtt_ms), np.inf, bound.max_km(rtt_ms))
    return out


def find_inconsistent(
    lat: Sequence[float] | FloatArray,
    lon: Sequence[float] | FloatArray,
    rtt_ms: FloatArray,
    bound: DistanceBound = PHYSICAL,
) -> list[tuple[int, int]]:
    """Landmarks of a mesh whose listed locations contradict the others, worst first.

    ``rtt_ms[i, j]`` is the (minimum) RTT between landmarks i and j, NaN where unmeasured; the
    matrix is symmetrised with the smaller of the two directions. Repeatedly removes the landmark
    that violates ``bound`` against the most others (ties: the larger total excess) until no
    violation is left. Returns ``(index, violations when removed)`` in removal order.

    A pair that is faster than light proves that one of the two is misplaced, not which: a
    landmark seen violating against only one other may be the innocent one of the pair.
    """
    dist = pair_distances(lat, lon)
    rtt = np.fmin(rtt_ms, rtt_ms.T)
    n = len(dist)
    with np.errstate(invalid="ignore"):
        excess = np.where(np.isnan(rtt), 0.0, dist - bound.max_km(np.nan_to_num(rtt, nan=0.0)))
    excess[np.arange(n), np.arange(n)] = 0.0
    alive = np.ones(n, dtype=bool)
    removed: list[tuple[int, int]] = []
    while True:
        bad = (excess > 0.0) & alive[:, None] & alive[None, :]
        counts = bad.sum(axis=1)
        if counts.max(initial=0) == 0:
            return removed
        total = np.where(bad, excess, 0.0).sum(axis=1)
        worst = int(np.lexsort((-total, -counts))[0])
        removed.append((worst, int(counts[worst])))
        alive[worst] = False


def calibrate(
    lat: Sequence[float] | FloatArray,
    lon: Sequence[float] | FloatArray,
    rtt_ms: FloatArray,
    *,
    names: Sequence[str] | None = None,
    margin: float = DEFAULT_MARGIN,
    slack_km: float = PHYSICAL.slack_km,
    min_pairs: int = DEFAULT_MIN_PAIRS,
    only: Sequence[int] | None = None,
    ceiling: bool = True,
) -> Calibration:
    """Per-landmark bounds from a mesh of RTTs between landmarks (``rtt_ms[i, j]``, NaN if unmeasured).

    Inconsistent landmarks are found first (``find_inconsistent``) and neither calibrated nor used
    to calibrate others. Each remaining landmark's speed is the fastest it reaches to any other
    consistent landmark (``(distance - slack) / (rtt / 2)``), times ``1 + margin``, capped at
    2/3 c; with fewer than ``min_pairs`` consistent pairs it keeps the physical bound. A kept
    landmark that beats 2/3 c against one removed on that single conflict (``find_inconsistent``'s
    coin toss) gets reliability ``SUSPECT_RELIABILITY``. ``only``
    restricts which landmarks are calibrated (e.g. the PoPs), the others still serve as references.
    ``ceiling``: also build the expected-RTT ceiling (``rtt_ceiling``) from the whole mesh, with
    extras for the calibrated landmarks.
    """
    la, lo = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
    n = len(la)
    labels = list(names) if names is not None else [""] * n
    removed = find_inconsistent(la, lo, rtt_ms, PHYSICAL)
    bad = {i for i, _ in removed}
    dist = pair_distances(la, lo)
    rtt = np.fmin(rtt_ms, rtt_ms.T)
    tossed = np.zeros(n, dtype=bool)  # removed on a single conflict: the partner may be the misplaced one
    tossed[[i for i, k in removed if k <= 1]] = True
    suspect: npt.NDArray[np.bool_] = np.asarray((violations(dist, rtt, PHYSICAL) & tossed[None, :]).any(axis=1))
    good = np.array([i not in bad for i in range(n)])
    wanted = range(n) if only is None else only
    landmarks: list[Landmark] = []
    for i in wanted:
        if i in bad:
            continue
        ok = good & ~np.isnan(rtt[i]) & (rtt[i] > 0.0)
        ok[i] = False
        pairs = int(ok.sum())
        bound = DistanceBound(FIBRE_KM_PER_MS, slack_km)
        if pairs >= min_pairs:
            speed = float(np.max((dist[i, ok] - slack_km) / (rtt[i, ok] / 2.0)))
            speed = min(FIBRE_KM_PER_MS, max(speed, 1.0) * (1.0 + margin))
            bound = DistanceBound(speed, slack_km)
        weight = SUSPECT_RELIABILITY if suspect[i] else 1.0
        landmarks.append(Landmark(float(la[i]), float(lo[i]), bound, labels[i], pairs, weight))
    inconsistent = tuple(Landmark(float(la[i]), float(lo[i]), PHYSICAL, labels[i]) for i in sorted(bad))
    ceil = rtt_ceiling(la, lo, rtt_ms, landmarks=list(wanted), inconsistent=sorted(bad)) if ceiling else None
    return Calibration(tuple(landmarks), inconsistent, DistanceBound(FIBRE_KM_PER_MS, slack_km), margin, ceil)
