"""Expected-RTT ceilings: how slowly an honest client near a landmark can answer it.

The upper-bound discs (``model``) are physical: a reply cannot beat light in fibre. They say
little about a client far from every landmark, whose discs are all large. The ceiling is the other
side, and it is statistical: honest clients at a given distance from a landmark answer it within
some RTT, and a client that claims to be near a landmark but answers it far more slowly is
evidence against the claim (a client in Tokyo claiming Frankfurt answers the Frankfurt landmark
in 230 ms where honest Frankfurt clients answer in < 20 ms). Constraint-based geolocation uses
the same two sides (CBG's per-landmark "bestline", Octant's negative constraints).

A ceiling is built from the RTT mesh between landmarks (plus any reference hosts), after the
inconsistent ones are removed:

- **base**: per distance bin (``CEILING_EDGES_KM``), the ``CEILING_QUANTILE`` RTT of the mesh's
  pairs, made non-decreasing with distance; a bin with fewer than ``CEILING_MIN_PAIRS`` pairs
  takes the next populated bin's value;
- **per-landmark extra** (an intercept): how far above the base the landmark's own pairs within
  ``CEILING_FIT_KM`` go at worst. A landmark behind slow regional routes (Beirut, Lagos,
  Shenzhen) gets a large extra, one in a dense, well-connected region almost none. A landmark
  with fewer than ``CEILING_MIN_FIT`` such pairs is fitted the same way on its pairs up to
  ``CEILING_WIDE_FIT_KM``; one with too few of those as well, or one the mesh never saw, gets
  the largest extra of the whole mesh.

The ceiling of landmark i at distance d is ``base(d) + extra_i + add_ms``. How it is weighed is
the rule's business (``rule.Tolerance.ceiling_*``, ``verify.Discs.ceiling_excess``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Distance bins (km): fine near a landmark, where a ceiling says most.
CEILING_EDGES_KM = (0.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0,
                    10000.0, 12000.0)  # fmt: skip
#: A bin with fewer honest pairs than this takes the next populated bin's value.
CEILING_MIN_PAIRS = 5
#: The base is this quantile of each bin's RTTs (the per-landmark extra covers the rest).
CEILING_QUANTILE = 0.9
#: A landmark's extra is fitted on its own pairs up to this distance...
CEILING_FIT_KM = 2000.0
#: ...when it has at least this many of them; otherwise on its pairs up to ``CEILING_WIDE_FIT_KM``
#: (a landmark in a sparse region: São Paulo, Sydney, Lagos; never above the mesh's largest
#: extra), and with fewer than this many of those too it gets the mesh's largest extra.
CEILING_MIN_FIT = 5
CEILING_WIDE_FIT_KM = 4000.0
#: Added to every ceiling: min-of-N pings of one client still differ by a few ms between landmarks.
CEILING_ADD_MS = 10.0


def _key(lat: float, lon: float) -> tuple[int, int]:
    return (round(lat * 100), round(lon * 100))  # as ``model.Calibration``: ~1 km


def _up(x: float) -> float:
    return math.ceil(x * 100.0) / 100.0  # saved values are rounded up: a saved ceiling never tightens


@dataclass(frozen=True, slots=True)
class RttCeiling:
    """Base envelope over distance, per-landmark extras, and the extra of a landmark not seen."""

    edges_km: tuple[float, ...]
    ms: tuple[float, ...]  # the base at each edge (holds up to the next edge, and past the last)
    default_extra_ms: float = 0.0
    extras: tuple[tuple[float, float, float], ...] = ()  # (lat, lon, extra ms) per landmark
    add_ms: float = CEILING_ADD_MS
    pairs: int = 0  # mesh pairs the base was built from
    _index: dict[tuple[int, int], float] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.edges_km) != len(self.ms) or not self.edges_km or self.edges_km[0] != 0.0:
            raise ValueError("a ceiling needs one RTT per distance edge, the first edge at 0 km")
        if any(b < a for a, b in zip(self.edges_km, self.edges_km[1:], strict=False)):
            raise ValueError("ceiling edges must increase")
        if not (self.default_extra_ms >= 0.0 and all(e >= 0.0 for _, _, e in self.extras)):
            raise ValueError("ceiling extras must be >= 0 ms")
        object.__setattr__(self, "_index", {_key(a, b): e for a, b, e in self.extras})

    def at(self, km: Any) -> FloatArray:
        """Base ceiling (ms, with ``add_ms``) at ``km`` from a landmark; numpy broadcasting."""
        k = np.searchsorted(np.asarray(self.edges_km), np.asarray(km, dtype=np.float64), side="right") - 1
        out: FloatArray = np.asarray(self.ms, dtype=np.float64)[np.clip(k, 0, len(self.ms) - 1)] + self.add_ms
        return out

    def extra_for(self, lat: float, lon: float) -> float:
        """The landmark's own extra (ms); the largest of the mesh for a landmark it never saw."""
        return self._index.get(_key(lat, lon), self.default_extra_ms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges_km": list(self.edges_km),
            "ms": [_up(x) for x in self.ms],
            "default_extra_ms": _up(self.default_extra_ms),
            "extras": [[a, b, _up(e)] for a, b, e in self.extras],
            "add_ms": self.add_ms,
            "pairs": self.pairs,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RttCeiling:
        return cls(
            tuple(float(x) for x in data["edges_km"]),
            tuple(float(x) for x in data["ms"]),
            float(data.get("default_extra_ms", 0.0)),
            tuple((float(a), float(b), float(e)) for a, b, e in data.get("extras", [])),
            float(data.get("add_ms", CEILING_ADD_MS)),
            int(data.get("pairs", 0)),
        )


def build(
    lat: FloatArray,
    lon: FloatArray,
    dist_km: FloatArray,
    rtt_ms: FloatArray,
    *,
    landmarks: Sequence[int] | None = None,
    skip: Sequence[int] = (),
    add_ms: float = CEILING_ADD_MS,
) -> RttCeiling | None:
    """The ceiling of a mesh (``dist_km``, ``rtt_ms``: (n, n), NaN where unmeasured).

    ``skip``: members left out (the inconsistent ones). ``landmarks``: whose extras to keep
    (default: every member). None when no distance bin has ``CEILING_MIN_PAIRS`` pairs.
    """
    n = len(lat)
    keep = np.setdiff1d(np.arange(n), np.asarray(skip, dtype=np.intp))
    rtt = np.fmin(rtt_ms, rtt_ms.T)[np.ix_(keep, keep)]
    dist = dist_km[np.ix_(keep, keep)]
    measured = np.isfinite(rtt) & (rtt > 0.0)
    np.fill_diagonal(measured, False)
    iu = np.triu_indices(len(keep), 1)
    d, r = dist[iu][measured[iu]], rtt[iu][measured[iu]]
    edges = np.asarray(CEILING_EDGES_KM)
    b = np.searchsorted(edges, d, side="right") - 1
    base = np.full(len(edges), np.nan)
    for k in range(len(edges)):
        inside = r[b == k]
        if len(inside) >= CEILING_MIN_PAIRS:
            base[k] = float(np.quantile(inside, CEILING_QUANTILE))
    if np.isnan(base).all():
        return None
    for k in range(len(edges) - 2, -1, -1):  # a thin bin takes the next populated bin's (larger) value
        if np.isnan(base[k]):
            base[k] = base[k + 1]
    base = np.maximum.accumulate(np.nan_to_num(base, nan=0.0))  # past the last populated bin: the one below
    resid = np.where(measured, rtt - base[np.clip(np.searchsorted(edges, dist, side="right") - 1, 0, None)], -np.inf)
    near = measured & (dist <= CEILING_FIT_KM)
    wide = measured & (dist <= CEILING_WIDE_FIT_KM)
    fitted = np.where(near, resid, -np.inf)
    worst = float(fitted.max(initial=-np.inf))
    default = max(0.0, worst if np.isfinite(worst) else float(resid.max(initial=0.0)))
    pos = {int(i): k for k, i in enumerate(keep)}
    extras = []
    for i in range(n) if landmarks is None else landmarks:
        if int(i) not in pos:
            continue
        k = pos[int(i)]
        if near[k].sum() >= CEILING_MIN_FIT:
            e = max(0.0, float(fitted[k].max()))
        elif wide[k].sum() >= CEILING_MIN_FIT:  # a sparse region: its own pairs farther out, not the mesh's worst
            e = min(default, max(0.0, float(resid[k][wide[k]].max())))
        else:
            e = default
        extras.append((float(lat[i]), float(lon[i]), e))
    return RttCeiling(
        tuple(float(x) for x in edges), tuple(float(x) for x in base), default, tuple(extras), add_ms, len(r)
    )
