"""Where: lower bounds on the distance between two countries, for the behaviour signal.

The distance between two uses of a key is a lower bound: the shortest great-circle distance
between any two populated places (GeoNames, 15,000 people or more; the most populous
``PLACES_PER_COUNTRY`` of each) of the two countries, so neighbouring countries are never "far
apart" and a finding means the physics really rule it out.
"""

from __future__ import annotations

import math
import threading

import numpy as np

PLACES_PER_COUNTRY = 300

_dist_lock = threading.Lock()
_dist_cache: dict[tuple[str, str], float] = {}


def distance_km(a: str, b: str) -> float:
    """A lower bound on the distance between anyone in country ``a`` and anyone in ``b``: the
    shortest great-circle distance between their populated places (0 when unknown)."""
    if a == b:
        return 0.0
    key = (a, b) if a < b else (b, a)
    got = _dist_cache.get(key)
    if got is not None:
        return got
    value = _min_distance(*key)
    with _dist_lock:
        _dist_cache[key] = value
    return value


def _min_distance(a: str, b: str) -> float:
    from geowarden.latency.model import EARTH_RADIUS_KM  # noqa: PLC0415
    from geowarden.latency.places import places  # noqa: PLC0415 - loaded once, on first use

    p = places()
    ra, rb = p.by_country.get(a), p.by_country.get(b)
    if ra is None or rb is None or not len(ra) or not len(rb):
        return 0.0
    ra = ra[np.argsort(-p.population[ra], kind="stable")[:PLACES_PER_COUNTRY]]
    rb = rb[np.argsort(-p.population[rb], kind="stable")[:PLACES_PER_COUNTRY]]
    dots = np.clip(p.points.xyz[ra] @ p.points.xyz[rb].T, -1.0, 1.0)
    return float(EARTH_RADIUS_KM * math.acos(float(dots.max())))
